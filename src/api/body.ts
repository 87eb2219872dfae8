import type { IncomingMessage } from 'node:http';
import { HttpError } from './reply.js';

/**
 * The client went away before its body was read to the end: there is no one to answer, and it
 * is the client's doing, not a failure of ours (logged at debug, so no client can grow the log).
 */
export class BodyAborted extends Error {
  override readonly name = 'BodyAborted';
}

/** A body being read: found from its request through {@link kBody}, so no closure is made per request. */
interface BodyRead {
  /** The first chunk; most bodies are one (no concat then). */
  first: Buffer | null;
  more: Buffer[] | null;
  size: number;
  maxBytes: number;
  over: boolean;
  ended: boolean;
  resolve: (body: unknown) => void;
  reject: (err: Error) => void;
}

const kBody = Symbol('mpush.body');
type Reading = IncomingMessage & { [kBody]: BodyRead };

/**
 * Reads a request body of at most `maxBytes` as JSON. Rejects with a 413 past the limit, a 400
 * when it is not JSON, and {@link BodyAborted} when the client leaves before its end.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const r: BodyRead = {
      first: null,
      more: null,
      size: 0,
      maxBytes,
      over: false,
      ended: false,
      resolve,
      reject,
    };
    (req as Reading)[kBody] = r;
    req.on('data', onData);
    req.on('end', onEnd);
    // A reset mid-body is an 'error' ('aborted', ECONNRESET); a close before 'end' covers the rest.
    req.on('error', onAborted);
    req.on('close', onClose);
  });
}

function onData(this: Reading, chunk: Buffer): void {
  const r = this[kBody];
  // Past the limit the rest is still read, and dropped: a request left half-read would stall its
  // keep-alive connection, and the client's next request on it.
  if (r.over) return;
  r.size += chunk.length;
  if (r.size > r.maxBytes) {
    r.over = true;
    r.first = r.more = null;
    return r.reject(new HttpError(413, `body larger than api.maxBodyBytes (${r.maxBytes})`));
  }
  if (r.first === null) r.first = chunk;
  else if (r.more === null) r.more = [r.first, chunk];
  else r.more.push(chunk);
}

function onEnd(this: Reading): void {
  const r = this[kBody];
  r.ended = true;
  if (r.over) return;
  const bytes = r.more ? Buffer.concat(r.more) : r.first;
  r.first = r.more = null;
  try {
    r.resolve(JSON.parse(bytes ? bytes.toString('utf8') : ''));
  } catch {
    r.reject(new HttpError(400, 'body is not JSON'));
  }
}

function onAborted(this: Reading): void {
  const r = this[kBody];
  r.reject(new BodyAborted(`request body aborted after ${r.size} bytes`));
}

function onClose(this: Reading): void {
  if (!this[kBody].ended) onAborted.call(this);
}
