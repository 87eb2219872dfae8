import type { IncomingMessage } from 'node:http';
import { HttpError } from './reply.js';

/**
 * The client went away before its body was read to the end: there is no one to answer, and it
 * is the client's doing, not a failure of ours (logged at debug, so no client can grow the log).
 */
export class BodyAborted extends Error {
  override readonly name = 'BodyAborted';
}

/**
 * Reads a request body of at most `maxBytes` as JSON. Rejects with a 413 past the limit, a 400
 * when it is not JSON, and {@link BodyAborted} when the client leaves before its end.
 */
export function readJsonBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    let ended = false;
    req.on('data', (chunk: Buffer) => {
      // Past the limit the rest is still read, and dropped: a request left half-read would
      // stall its keep-alive connection, and the client's next request on it.
      if (over) return;
      size += chunk.length;
      if (size > maxBytes) {
        over = true;
        chunks.length = 0;
        return reject(new HttpError(413, `body larger than api.maxBodyBytes (${maxBytes})`));
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      ended = true;
      if (over) return;
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new HttpError(400, 'body is not JSON'));
      }
    });
    // A reset mid-body is an 'error' ('aborted', ECONNRESET); a close before 'end' covers the rest.
    const aborted = () => reject(new BodyAborted(`request body aborted after ${size} bytes`));
    req.on('error', aborted);
    req.on('close', () => {
      if (!ended) aborted();
    });
  });
}
