import { DeviceClient, type DeviceClientOptions } from '../../src/client/device/index.js';
import { loadPublicKey } from '../../src/crypto/index.js';
import { mpushDefaultKeys } from './shared.js';

const publicKey = loadPublicKey(mpushDefaultKeys().publicKey);

/** A connected, bound DeviceClient (the real SDK) recording its pushes. */
export interface TestDevice {
  client: DeviceClient;
  pushes: Array<{ content: Buffer; sessionId: number; ackModel: string }>;
}

let seq = 0;

export async function connectDevice(
  port: number,
  userId: string,
  opts: Partial<DeviceClientOptions> = {},
): Promise<TestDevice> {
  const client = new DeviceClient({
    servers: [{ host: '127.0.0.1', port }],
    publicKey,
    deviceId: `test-dev-${process.pid}-${++seq}`,
    osName: 'android',
    userId,
    autoReconnect: false,
    ...opts,
  });
  const d: TestDevice = { client, pushes: [] };
  client.on('push', (p) =>
    d.pushes.push({ content: p.content, sessionId: p.sessionId, ackModel: p.ackModel }),
  );
  const bound = new Promise<void>((resolve) => client.once('bind', () => resolve()));
  await client.connect();
  await bound;
  return d;
}

export async function closeAll(devices: TestDevice[]): Promise<void> {
  await Promise.all(devices.map((d) => d.client.close()));
}
