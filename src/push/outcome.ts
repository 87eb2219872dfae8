/** How one push to one (user, client type) ended on the node, as the gateway reports it. */
export type PushOutcome =
  | { kind: 'ok'; userId: string; clientType: number; timePoints: Record<string, number> }
  | { kind: 'error'; code: number; reason: string };

/** Counts of a broadcast task, live while it runs. */
export interface BroadcastCounts {
  /** Devices the filter accepted. */
  matched: number;
  /** Pushes written. */
  sent: number;
  /** Acks received (when an ack was asked). */
  acked: number;
  /** Writes that failed, and acks that timed out. */
  failed: number;
}

export type BroadcastStatus = 'running' | 'done' | 'cancelled';

export interface BroadcastReport extends BroadcastCounts {
  taskId: string;
  status: BroadcastStatus;
  startedAt: number;
  finishedAt: number | null;
}
