import { DeviceClient, type DeviceClientOptions } from '../../src/client/device/index.js';
import { loadPublicKey } from '../../src/crypto/index.js';
import { mpushDefaultKeys } from './shared.js';

const publicKey = loadPublicKey(mpushDefaultKeys().publicKey);

/** A connected DeviceClient (the real SDK) recording its pushes and the kicks it got. */
export interface TestDevice {
  client: DeviceClient;
  pushes: Array<{ content: Buffer; sessionId: number; ackModel: string }>;
  kicks: number;
}

let seq = 0;

/** A device not yet connected, recording what it gets. */
function device(port: number, opts: Partial<DeviceClientOptions>): TestDevice {
  const client = new DeviceClient({
    servers: [{ host: '127.0.0.1', port }],
    publicKey,
    deviceId: `test-dev-${process.pid}-${++seq}`,
    osName: 'android',
    autoReconnect: false,
    ...opts,
  });
  const d: TestDevice = { client, pushes: [], kicks: 0 };
  client.on('push', (p) =>
    d.pushes.push({ content: p.content, sessionId: p.sessionId, ackModel: p.ackModel }),
  );
  client.on('kick', () => d.kicks++);
  return d;
}

/** A connected device bound to `userId`. */
export async function connectDevice(
  port: number,
  userId: string,
  opts: Partial<DeviceClientOptions> = {},
): Promise<TestDevice> {
  const d = device(port, { userId, ...opts });
  const bound = new Promise<void>((resolve) => d.client.once('bind', () => resolve()));
  await d.client.connect();
  await bound;
  return d;
}

/** A connected device that has not bound a user yet (`client.bindUser` binds it). */
export async function connectUnbound(
  port: number,
  opts: Partial<DeviceClientOptions> = {},
): Promise<TestDevice> {
  const d = device(port, opts);
  await d.client.connect();
  return d;
}

export async function closeAll(devices: TestDevice[]): Promise<void> {
  await Promise.all(devices.map((d) => d.client.close()));
}
