import { redactedConfig, redactValue } from '../config/index.js';
import { clientTypeName } from '../protocol/index.js';
import type { AdminNodeView } from './admin-view.js';

/** MPush's console end of line, after every line of a reply and once more after the reply. */
export const EOL = '\r\n';

/** MPush 0.8.1's option table, as its `help` prints it (scripts may match it). */
export const HELP_TABLE = [
  'Option                               Description',
  '------                               -----------',
  'help                                 show help',
  'quit                                 exit console mode',
  'shutdown                             stop mpush server',
  'restart                              restart mpush server',
  'zk:<redis, cs ,gs>                   query zk node',
  'count:<conn, online>                 count conn num or online user count',
  'route:<uid>                          show user route info',
  'push:<uid>, <msg>                    push test msg to client',
  'conf:[key]                           show config info',
  'monitor:[mxBean]                     show system monitor',
  'profile:<1,0>                        enable/disable profile',
]
  .map((line) => line + EOL)
  .join('');

/** One request line as MPush's AdminHandler reads it. */
export interface AdminRequest {
  /** First token, trimmed and lower-cased; `help` for an empty line. */
  option: string;
  /** The second token when the line has exactly two, else null (MPush's rule, kept). */
  arg: string | null;
  /** Everything after the first space: `push`'s `<userId> <msg>` (mpush-ts reads the rest). */
  rest: string;
}

/**
 * Splits a line as MPush does: on single spaces (Java's `split(" ")`, so trailing empty tokens
 * drop and two spaces make an empty token), option = first token trimmed and lower-cased, arg =
 * the second token only when there are exactly two.
 */
export function parseRequest(line: string): AdminRequest {
  const tokens = line.split(' ');
  while (tokens.length > 0 && tokens[tokens.length - 1] === '') tokens.pop();
  if (tokens.length === 0) return { option: 'help', arg: null, rest: '' };
  const space = line.indexOf(' ');
  return {
    option: tokens[0]!.trim().toLowerCase(),
    arg: tokens.length === 2 ? tokens[1]! : null,
    rest: space < 0 ? '' : line.slice(space + 1),
  };
}

/** What a command answers, and what the connection does after writing it. */
export interface AdminReply {
  text: string;
  after?: 'close' | 'shutdown';
}

/** `[<arg>] unsupported, try help.`, with Java's `null` for a missing arg. */
function unsupportedArg(arg: string | null): string {
  return `[${arg ?? 'null'}] unsupported, try help.`;
}

/**
 * The commands of MPush 0.8.1's AdminHandler over this node: the same replies where MPush has one,
 * and `push` and `zk` done for real (0.8.1 lists them in help but answers "unsupported option").
 */
export class AdminCommands {
  constructor(private readonly node: AdminNodeView) {}

  async run(req: AdminRequest): Promise<AdminReply> {
    const { option, arg } = req;
    switch (option) {
      case 'help':
        return { text: HELP_TABLE };
      case 'quit':
        return { text: 'have a good day!', after: 'close' };
      case 'shutdown':
        if (!this.node.config.admin.allowShutdown)
          return { text: 'shutdown refused: admin.allowShutdown is false on this node' };
        return { text: 'try close connect server...', after: 'shutdown' };
      case 'count':
        return { text: this.count(arg) };
      case 'route':
        return { text: await this.route(arg) };
      case 'push':
        return { text: await this.push(req.rest) };
      case 'conf':
        return { text: this.conf(arg) };
      case 'zk':
        return { text: await this.zk(arg) };
      case 'profile':
        // MPush's answers; mpush-ts has no such profiler, so nothing changes.
        if (arg === '1') return { text: 'Profiler enabled' };
        if (arg === '0') return { text: 'Profiler disabled' };
        return { text: unsupportedArg(arg) };
      default:
        return { text: 'unsupported option' };
    }
  }

  private count(arg: string | null): string {
    const { connections, onlineUsers } = this.node.counts();
    if (arg === 'conn') return String(connections);
    if (arg === 'online') return String(onlineUsers);
    return unsupportedArg(arg);
  }

  /** The user's routes in the whole cluster, in the shape of MPush's RemoteRouter JSON. */
  private async route(userId: string | null): Promise<string> {
    if (!userId) return 'please input userId';
    const routes = await this.node.routes.lookup(userId);
    if (routes.size === 0) return `user [${userId}] offline now.`;
    // fastjson's order (alphabetical), as MPush prints it.
    const routers = [...routes].map(([clientType, r]) => ({
      routeType: 'REMOTE',
      routeValue: {
        clientType,
        clientVersion: r.clientVersion,
        connId: r.connId,
        deviceId: r.deviceId,
        host: r.host,
        osName: r.osName,
        port: r.port,
      },
    }));
    return JSON.stringify(routers);
  }

  /**
   * `push <userId> <msg>`: the message is the rest of the line (MPush would read a message with
   * spaces as no argument at all). One line per result (user, device type).
   */
  private async push(rest: string): Promise<string> {
    const space = rest.indexOf(' ');
    const userId = space < 0 ? rest : rest.slice(0, space);
    const msg = space < 0 ? '' : rest.slice(space + 1);
    if (!userId || !msg) return 'usage: push <userId> <msg>';
    const results = await this.node.push(userId, msg);
    return results
      .map((r) => {
        const type = r.clientType > 0 ? ` ${clientTypeName(r.clientType)}` : '';
        return `user [${r.userId}]${type}: ${r.result}${r.reason ? ` (${r.reason})` : ''}`;
      })
      .join(EOL);
  }

  /** The configuration, never a secret: all of it as JSON, a group as JSON, or one value as text. */
  private conf(key: string | null): string {
    const config = redactedConfig(this.node.config);
    if (key === null || key === '') return JSON.stringify(config, null, 2);
    const [group, name, ...more] = key.split('.');
    const values = Object.hasOwn(config, group!) ? config[group!] : undefined;
    if (values && name === undefined) return JSON.stringify(values, null, 2);
    if (values && more.length === 0 && Object.hasOwn(values, name!)) return String(values[name!]);
    return `key [${key}] not find in config`;
  }

  /** The node registry (MPush kept its servers in ZooKeeper): every live node, or one kind of server. */
  private async zk(arg: string | null): Promise<string> {
    if (arg === 'redis') {
      const url = redactValue('cluster.redis', this.node.config.cluster.redis);
      return url ? String(url) : 'no redis: this node keeps its stores in memory';
    }
    if (arg !== null && arg !== 'cs' && arg !== 'gs') return unsupportedArg(arg);
    const nodes = await this.node.registry.list();
    if (arg === 'cs') return JSON.stringify(nodes.map((n) => ({ host: n.host, port: n.port })));
    if (arg === 'gs') return JSON.stringify(nodes.map((n) => ({ host: n.gatewayHost, port: n.gatewayPort })));
    return JSON.stringify(nodes, null, 2);
  }
}
