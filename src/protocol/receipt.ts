/**
 * A message's receipt, the JSON of GET /api/messages/:messageId and of the GATEWAY_MESSAGE_STATUS
 * answer: defined once here, where the node (cluster/inbox-store.ts builds it) and the push SDK
 * (PushSender.status reads it) both import it.
 */

/** What happened to a message, per device type or to the user's inbox copy. */
export type ReceiptState = 'stored' | 'sent' | 'acked' | 'expired' | 'dropped';

export interface DeviceReceipt {
  clientType: number;
  clientTypeName: string;
  state: ReceiptState;
  storedAt?: number;
  sentAt?: number;
  ackedAt?: number;
  expiredAt?: number;
  droppedAt?: number;
}

export interface UserReceipt {
  userId: string;
  /** The inbox copy: kept (`stored`), gone by TTL (`expired`) or by the cap (`dropped`); null when never stored. */
  inbox: 'stored' | 'expired' | 'dropped' | null;
  storedAt?: number;
  expiredAt?: number;
  droppedAt?: number;
  devices: DeviceReceipt[];
}

export interface MessageReceipt {
  messageId: string;
  /** The first event's time. */
  createdAt: number;
  /** The last event's time. */
  updatedAt: number;
  users: UserReceipt[];
}
