/** What the worker's host tools and services (du, find, the Temporal dev server, Podman) get of its environment. */
const KEPT = ['PATH', 'HOME', 'USER', 'LANG', 'TMPDIR', 'XDG_RUNTIME_DIR'];

/**
 * The worker's environment holds the secrets runs may name: a process it starts with all of it would show them
 * in /proc/<pid>/environ (to root, and to whoever shares its user), for as long as it runs. Those get only this.
 */
export function hostToolEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(KEPT.filter((k) => env[k] !== undefined).map((k) => [k, env[k]]));
}
