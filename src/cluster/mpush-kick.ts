import { z } from 'zod';

/**
 * MPush 0.8.1's cross-node kick, for clusters where MPush-Java nodes serve beside ours: when a
 * device binds and the user's same-type route points at another node, MPush publishes this JSON on
 * the Redis channel `/mpush/kick/<gateway host:port of that node>`, and the node there kicks the
 * local connection whose id is `connId` (and only that one). Field names are MPush's
 * MQKickRemoteMsg; keys are written in fastjson's (alphabetical) order, as MPush writes them.
 */
export const mpushKickSchema = z.object({
  userId: z.string(),
  clientType: z.number().int(),
  connId: z.string(),
  deviceId: z.string().catch(''),
  targetServer: z.string(),
  targetPort: z.number().int(),
});

export type MPushKick = z.infer<typeof mpushKickSchema>;

/** MPush's kick channel for the node whose gateway is at `host:port`. */
export function mpushKickChannel(host: string, port: number): string {
  return `/mpush/kick/${host}:${port}`;
}

/** The message as MPush writes it (a plain object the bus serializes in this key order). */
export function mpushKickMessage(k: MPushKick): Record<string, unknown> {
  return {
    clientType: k.clientType,
    connId: k.connId,
    deviceId: k.deviceId,
    targetPort: k.targetPort,
    targetServer: k.targetServer,
    userId: k.userId,
  };
}
