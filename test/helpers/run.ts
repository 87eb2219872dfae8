import { spawn } from 'node:child_process';

/** What a child process printed, and how it ended. */
export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command args` to its end, writing `input` to its stdin; a child still running after
 * `guardMs` is killed and the promise rejects (a hang guard, never a timing assertion).
 */
export function runToEnd(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; guardMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, {
      ...(opts.env ? { env: opts.env } : {}),
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    const guard = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${command} ${args.join(' ')} did not exit; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, opts.guardMs ?? 20_000);
    proc.on('error', (err) => {
      clearTimeout(guard);
      reject(err);
    });
    proc.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
    proc.stdin?.end(opts.input);
  });
}
