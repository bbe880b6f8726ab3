// The docker driver's images as the admin names them (NIGHTSHIFT_DOCKER_IMAGE, NIGHTSHIFT_DOCKER_IMAGES) and a spec
// asks for them (`sandbox.image`): compared by name, a name without a tag or digest meaning `:latest`, as engines do.

/** `name` with its tag: `nightshift-go` → `nightshift-go:latest`; a tag or a digest is kept as written. */
export function imageRef(name: string): string {
  const trimmed = name.trim();
  if (trimmed.includes('@')) return trimmed;
  const last = trimmed.slice(trimmed.lastIndexOf('/') + 1);
  return last.includes(':') ? trimmed : `${trimmed}:latest`;
}

/** The images a spec may name: the default first (always allowed), then NIGHTSHIFT_DOCKER_IMAGES (comma-separated). */
export function allowedImages(defaultImage: string, list: string | undefined): string[] {
  const named = (list ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(imageRef);
  return [...new Set([imageRef(defaultImage), ...named])];
}
