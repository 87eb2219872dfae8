import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Config, type DeepPartial, loadConfig } from '../../src/config/index.js';
import { type Logger, silentLogger } from '../../src/log.js';
import { MpushNode, type NodeStores } from '../../src/node.js';
import { mpushDefaultKeys } from './shared.js';

export interface TestNode {
  node: MpushNode;
  config: Config;
  tcpPort: number;
  httpPort: number;
  stop(): Promise<void>;
}

/** A node on free ports with MPush's default key pair and a private data dir. */
export async function startTestNode(
  overrides: DeepPartial<Config> = {},
  stores: Partial<NodeStores> = {},
  log: Logger = silentLogger,
): Promise<TestNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mpush-test-'));
  const keys = mpushDefaultKeys();
  const config = loadConfig({
    overrides: {
      ...overrides,
      node: { dataDir, ...overrides.node },
      server: { host: '127.0.0.1', port: 0, ...overrides.server },
      gateway: { host: '127.0.0.1', port: 0, ...overrides.gateway },
      http: { host: '127.0.0.1', port: 0, ...overrides.http },
      admin: { port: 0, ...overrides.admin },
      security: { privateKey: keys.privateKey, publicKey: keys.publicKey, ...overrides.security },
    },
  });
  const node = new MpushNode({ config, log, stores });
  const { tcpPort, httpPort } = await node.start();
  return {
    node,
    config,
    tcpPort,
    httpPort,
    async stop() {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
