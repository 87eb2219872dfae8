/** Ack models (MPush's names): when a push counts as delivered. */
export type AckModel = 'NO_ACK' | 'AUTO_ACK' | 'BIZ_ACK';

/** The four outcomes of a push request, with MPush's codes. */
export const ResultCode = { success: 1, failure: 2, offline: 3, timeout: 4 } as const;
export type ResultName = keyof typeof ResultCode;

/** Where the time of one request went (ms since epoch). */
export interface Timeline {
  begin: number;
  'check-gateway-conn'?: number;
  'send-to-gateway-begin'?: number;
  'send-to-gateway-end'?: number;
  end?: number;
}

/** The result of one request: one (user, client type). */
export interface PushResult {
  userId: string;
  /** -1 when the user had no route at all. */
  clientType: number;
  result: ResultName;
  code: (typeof ResultCode)[ResultName];
  /** Why, for anything but success. */
  reason?: string;
  /** Gateway the request went to last. */
  gateway?: string;
  redirects: number;
  timeline: Timeline;
  /** The node's own time points (received, written, acked), on success. */
  timePoints?: Record<string, number>;
}

export interface PushCallback {
  onResult?(result: PushResult): void;
  onSuccess?(result: PushResult): void;
  onFailure?(result: PushResult): void;
  onOffline?(result: PushResult): void;
  onTimeout?(result: PushResult): void;
}

/** A message sent as JSON (`{msgType, msgId, content}`), MPush's PushMsg. */
export interface PushMsg {
  msgType?: number;
  msgId?: string;
  content: string;
  [extra: string]: unknown;
}

/** What to push, to whom, and how (MPush's PushContext). */
export interface PushContext {
  content?: Buffer | string;
  msg?: PushMsg;
  userId?: string;
  userIds?: string[];
  /** To every connected device (optionally narrowed by tags or condition). */
  broadcast?: boolean;
  tags?: string[];
  condition?: string;
  ackModel?: AckModel;
  /** ms; default 3000. */
  timeout?: number;
  /** Broadcast task id; generated when absent. */
  taskId?: string;
  /** Broadcast rate, devices per second per node (0: node default). */
  broadcastRate?: number;
  /** Most devices a broadcast reaches per node (0: no limit). */
  broadcastMax?: number;
  callback?: PushCallback;
}

/** Counts of a broadcast across nodes. */
export interface BroadcastResult {
  taskId: string;
  result: 'success' | 'failure';
  reason?: string;
  matched: number;
  sent: number;
  acked: number;
  failed: number;
  nodes: Array<{
    gateway: string;
    status: string;
    matched: number;
    sent: number;
    acked: number;
    failed: number;
    error?: string;
  }>;
}
