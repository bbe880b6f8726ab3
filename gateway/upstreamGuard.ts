// The upstream guard: an upstream the admin did not list must resolve to public addresses only, checked on the
// address the socket then connects to (no second lookup a DNS rebinding could answer differently).
import * as dns from 'node:dns';
import { internalAddress } from '../spec/network';

/** Why connecting to this host is refused: an internal address, the key must not go there. */
export class InternalUpstream extends Error {
  readonly code = 'EINTERNAL';
}

/**
 * dns.lookup for connections to upstreams the admin did not list: every address the name resolves to must be public,
 * and the socket connects to the one checked here (no second lookup to rebind).
 */
export const publicLookup = ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err);
    const internal = addresses.map((a) => internalAddress(a.address)).find(Boolean);
    if (internal) return callback(new InternalUpstream(`${hostname} resolves to ${internal}`));
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0].address, addresses[0].family);
  });
}) as unknown as typeof dns.lookup;
