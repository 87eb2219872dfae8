import {
  ClientType,
  clientTypeName,
  type DeviceReceipt,
  type MessageReceipt,
  type ReceiptState,
  type UserReceipt,
} from '../protocol/index.js';

/**
 * The durable inbox and the message receipts: user → messages kept for later, in the order they
 * were stored, each with the client types that already have it; and message → what happened to
 * it, per user and device type. Memory here (one machine); Redis for a cluster
 * (redis-inbox-store.ts). The policy (what is kept, when a message counts as delivered) is the
 * push center's (push/inbox.ts); a store only keeps what it is told, in order, bounded.
 */

/** A message kept for a user. */
export interface InboxEntry {
  messageId: string;
  /** What the device gets: the PUSH body (MPush's PushMsg JSON when sent as `msg`). */
  content: Buffer;
  /** Flags.AUTO_ACK / Flags.BIZ_ACK of the push (0: NO_ACK). */
  ackFlags: number;
  /** How long a replay waits for the device's ack, ms. */
  timeoutMs: number;
  storedAt: number;
  /** After this (ms since epoch) the message is dropped, never delivered. */
  expiresAt: number;
}

/** What one store did: which older messages the per-user cap pushed out. */
export interface StoreOutcome {
  /** False when the message was already kept (a second store of one messageId is a no-op). */
  added: boolean;
  /** Ids dropped to make room, oldest first. */
  dropped: string[];
}

/** What a device of one type still has to get, and what expired on the way. */
export interface PendingMessages {
  /** In store order. */
  entries: InboxEntry[];
  /** Ids found expired and removed by this read. */
  expired: string[];
}

export type { DeviceReceipt, ReceiptState, UserReceipt };

/** One thing that happened to a message: to the user's inbox copy (clientType null) or to a device type. */
export interface ReceiptEvent {
  userId: string;
  clientType: number | null;
  state: ReceiptState;
  at: number;
}

/** GET /api/messages/:messageId. */
export type Receipt = MessageReceipt;

/** The device types a message is for: once each has it, the message leaves the inbox. */
export const INBOX_CLIENT_TYPES: readonly number[] = [ClientType.MOBILE, ClientType.PC, ClientType.WEB];

export interface InboxStore {
  /**
   * Keeps `entry` at the end of `userId`'s inbox; drops the oldest past `maxMessages`. Storing a
   * messageId the inbox already holds changes nothing.
   */
  store(userId: string, entry: InboxEntry, maxMessages: number): Promise<StoreOutcome>;
  /**
   * What a device of `clientType` has still to get, oldest first; messages expired at `now`
   * are removed and listed.
   */
  pending(userId: string, clientType: number, now: number): Promise<PendingMessages>;
  /**
   * `clientType` has the message (written with NO_ACK, or acked): it is never pending for that
   * type again, even when the store comes after this call (a live push to one device type can
   * finish before another type's miss is stored). `ttlMs` bounds how long that mark is kept
   * when the message is not (yet) stored. Once every type of {@link INBOX_CLIENT_TYPES} has it,
   * the message leaves the inbox.
   */
  settle(userId: string, clientType: number, messageId: string, ttlMs: number): Promise<void>;
  /** Records events of a message's receipt, kept `ttlMs` from the last one. */
  record(messageId: string, events: readonly ReceiptEvent[], ttlMs: number): Promise<void>;
  /** The receipt, or undefined when unknown or past its TTL. */
  receipt(messageId: string): Promise<Receipt | undefined>;
  close(): Promise<void>;
}

/** The field one event is kept under: the latest time wins for each (user, type, state). */
export function eventKey(e: Pick<ReceiptEvent, 'userId' | 'clientType' | 'state'>): string {
  return JSON.stringify([e.userId, e.clientType, e.state]);
}

const STATES: readonly ReceiptState[] = ['stored', 'sent', 'acked', 'expired', 'dropped'];

/** An event field read back; undefined when it is not one (another writer's key). */
export function parseEventKey(key: string, at: number): ReceiptEvent | undefined {
  try {
    const v: unknown = JSON.parse(key);
    if (!Array.isArray(v) || v.length !== 3) return undefined;
    const [userId, clientType, state] = v as unknown[];
    if (typeof userId !== 'string' || !(clientType === null || Number.isInteger(clientType)))
      return undefined;
    if (!STATES.includes(state as ReceiptState) || !Number.isFinite(at)) return undefined;
    return { userId, clientType: clientType as number | null, state: state as ReceiptState, at };
  } catch {
    return undefined;
  }
}

function atKey(state: ReceiptState): 'storedAt' | 'sentAt' | 'ackedAt' | 'expiredAt' | 'droppedAt' {
  return `${state}At` as const;
}

/**
 * A receipt from its events (both stores keep events, so both answer the same way). A device's
 * state: `acked` once acked; else the later of `stored` (missed, kept) and `sent` (written);
 * a device still `stored` when the inbox copy expired or was dropped shares that fate.
 */
export function receiptOf(messageId: string, events: readonly ReceiptEvent[]): Receipt | undefined {
  if (events.length === 0) return undefined;
  const users = new Map<string, { user: UserReceipt; devices: Map<number, DeviceReceipt> }>();
  let createdAt = Number.POSITIVE_INFINITY;
  let updatedAt = 0;
  for (const e of events) {
    createdAt = Math.min(createdAt, e.at);
    updatedAt = Math.max(updatedAt, e.at);
    let u = users.get(e.userId);
    if (!u) {
      u = { user: { userId: e.userId, inbox: null, devices: [] }, devices: new Map() };
      users.set(e.userId, u);
    }
    if (e.clientType === null) {
      u.user[atKey(e.state) as 'storedAt'] = Math.max(u.user[atKey(e.state) as 'storedAt'] ?? 0, e.at);
      continue;
    }
    let d = u.devices.get(e.clientType);
    if (!d) {
      d = { clientType: e.clientType, clientTypeName: clientTypeName(e.clientType), state: e.state };
      u.devices.set(e.clientType, d);
    }
    d[atKey(e.state)] = Math.max(d[atKey(e.state)] ?? 0, e.at);
  }
  const out: UserReceipt[] = [];
  for (const { user, devices } of users.values()) {
    const gone: 'expired' | 'dropped' | null =
      user.droppedAt !== undefined ? 'dropped' : user.expiredAt !== undefined ? 'expired' : null;
    user.inbox = gone ?? (user.storedAt !== undefined ? 'stored' : null);
    for (const d of [...devices.values()].sort((a, b) => a.clientType - b.clientType)) {
      if (d.ackedAt !== undefined) d.state = 'acked';
      else if (d.sentAt !== undefined && (d.storedAt === undefined || d.sentAt > d.storedAt))
        d.state = 'sent';
      else d.state = 'stored';
      if (d.state === 'stored' && gone) {
        d.state = gone;
        d[atKey(gone)] = user[atKey(gone) as 'expiredAt'];
      }
      user.devices.push(d);
    }
    out.push(user);
  }
  return { messageId, createdAt, updatedAt, users: out };
}

interface MemoryInbox {
  /** messageId → entry, in insertion (store) order. */
  entries: Map<string, InboxEntry>;
  /** messageId → types that have it, and until when the mark is kept. */
  done: Map<string, { types: Set<number>; until: number }>;
}

/**
 * The inbox and receipts in this process (one machine). Bounded: `maxUsers` inboxes (a new one
 * past it is refused: the push still gets its live result) and as many receipts (the oldest go).
 */
export class MemoryInboxStore implements InboxStore {
  private readonly inboxes = new Map<string, MemoryInbox>();
  private readonly receipts = new Map<string, { events: Map<string, ReceiptEvent>; until: number }>();

  constructor(
    private readonly maxUsers = 1_000_000,
    private readonly clock: () => number = Date.now,
  ) {}

  async store(userId: string, entry: InboxEntry, maxMessages: number): Promise<StoreOutcome> {
    let box = this.inboxes.get(userId);
    if (!box) {
      if (this.inboxes.size >= this.maxUsers) throw new Error('inbox store full (inbox.memoryMaxUsers)');
      box = { entries: new Map(), done: new Map() };
      this.inboxes.set(userId, box);
    }
    if (box.entries.has(entry.messageId)) return { added: false, dropped: [] };
    box.entries.set(entry.messageId, { ...entry, content: Buffer.from(entry.content) });
    const dropped: string[] = [];
    for (const id of box.entries.keys()) {
      if (box.entries.size <= maxMessages) break;
      box.entries.delete(id);
      box.done.delete(id);
      dropped.push(id);
    }
    return { added: true, dropped };
  }

  async pending(userId: string, clientType: number, now: number): Promise<PendingMessages> {
    const box = this.inboxes.get(userId);
    if (!box) return { entries: [], expired: [] };
    const entries: InboxEntry[] = [];
    const expired: string[] = [];
    for (const [id, e] of box.entries) {
      if (e.expiresAt <= now) {
        box.entries.delete(id);
        box.done.delete(id);
        expired.push(id);
      } else if (!box.done.get(id)?.types.has(clientType)) {
        entries.push({ ...e, content: Buffer.from(e.content) });
      }
    }
    for (const [id, d] of box.done) if (d.until <= now && !box.entries.has(id)) box.done.delete(id);
    if (box.entries.size === 0 && box.done.size === 0) this.inboxes.delete(userId);
    return { entries, expired };
  }

  async settle(userId: string, clientType: number, messageId: string, ttlMs: number): Promise<void> {
    let box = this.inboxes.get(userId);
    if (!box) {
      if (this.inboxes.size >= this.maxUsers) throw new Error('inbox store full (inbox.memoryMaxUsers)');
      box = { entries: new Map(), done: new Map() };
      this.inboxes.set(userId, box);
    }
    let d = box.done.get(messageId);
    if (!d) {
      d = { types: new Set(), until: this.clock() + ttlMs };
      box.done.set(messageId, d);
    }
    d.types.add(clientType);
    if (INBOX_CLIENT_TYPES.every((t) => d.types.has(t))) {
      box.entries.delete(messageId);
      box.done.delete(messageId);
      if (box.entries.size === 0 && box.done.size === 0) this.inboxes.delete(userId);
    }
  }

  async record(messageId: string, events: readonly ReceiptEvent[], ttlMs: number): Promise<void> {
    const now = this.clock();
    let r = this.receipts.get(messageId);
    if (r && r.until <= now) {
      this.receipts.delete(messageId);
      r = undefined;
    }
    if (!r) {
      r = { events: new Map(), until: 0 };
      this.receipts.set(messageId, r);
      // Map order is insertion order: the first keys are the oldest receipts.
      for (const id of this.receipts.keys()) {
        if (this.receipts.size <= this.maxUsers) break;
        this.receipts.delete(id);
      }
    }
    for (const e of events) {
      const k = eventKey(e);
      const old = r.events.get(k);
      if (!old || old.at <= e.at) r.events.set(k, { ...e });
    }
    r.until = now + ttlMs;
  }

  async receipt(messageId: string): Promise<Receipt | undefined> {
    const r = this.receipts.get(messageId);
    if (!r) return undefined;
    if (r.until <= this.clock()) {
      this.receipts.delete(messageId);
      return undefined;
    }
    return receiptOf(messageId, [...r.events.values()]);
  }

  async close(): Promise<void> {}
}
