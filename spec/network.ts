import { isIP } from 'node:net';

/** One entry of `sandbox.network`: a host (or `*.suffix`) and a port (none = the web ports, 80 and 443). */
export interface NetworkRule {
  host: string;
  wildcard: boolean;
  port?: number;
  isIp: boolean;
}

export const CONTROL_OR_SPACE = /[\x00-\x1f\x7f\s]/;

/** `host`, `host:port`, `*.suffix`, `*.suffix:port`, IPv4 literals; lower-cased. Throws with a reason otherwise. */
export function parseNetworkRule(entry: string): NetworkRule {
  if (CONTROL_OR_SPACE.test(entry)) throw new Error(`"${entry.replace(CONTROL_OR_SPACE, '?')}" has control characters or spaces`);
  const m = /^(\*\.)?([a-z0-9.-]+)(?::(\d{1,5}))?$/i.exec(entry);
  if (!m || (m[3] && (Number(m[3]) < 1 || Number(m[3]) > 65535))) throw new Error(`"${entry}" is not host[:port] or *.suffix[:port]`);
  const host = m[2].toLowerCase();
  return { host, wildcard: Boolean(m[1]), port: m[3] ? Number(m[3]) : undefined, isIp: isIP(host) !== 0 };
}
