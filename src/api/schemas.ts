import type { Schema } from './validate.js';

const ackModel = { type: 'string', enum: ['NO_ACK', 'AUTO_ACK', 'BIZ_ACK'] } as const;
const msg = { type: 'object' } as const;

/** POST /api/push: the field names of PushContext. */
export const pushSchema: Schema = {
  userId: { type: 'string', maxLength: 256 },
  userIds: { type: 'string[]', maxLength: 10_000 },
  content: { type: 'string', maxLength: 4 * 1024 * 1024 },
  msg,
  ackModel,
  timeout: { type: 'integer', min: 1, max: 600_000 },
};

/** POST /api/broadcast. */
export const broadcastSchema: Schema = {
  content: { type: 'string', maxLength: 4 * 1024 * 1024 },
  msg,
  tags: { type: 'string[]', maxLength: 1000 },
  condition: { type: 'string', maxLength: 1024 },
  ackModel,
  timeout: { type: 'integer', min: 1, max: 600_000 },
  taskId: { type: 'string', maxLength: 128 },
  broadcastRate: { type: 'integer', min: 0 },
  broadcastMax: { type: 'integer', min: 0 },
  /** Answer only once every node has written its share (default: answer at once with the taskId). */
  wait: { type: 'boolean' },
};
