// `npm run check:imports`: the import rules of .dependency-cruiser.cjs, and two cycle rules on its graph that
// dependency-cruiser cannot state soundly: no runtime cycle between files (its type-only exception inspects one cycle
// per import, so a type-only shortcut can hide a runtime cycle) and no cycle between top-level folders (its folder
// scope links a folder to the target's own folder, not to its top-level one). One line per violation, rule first;
// exits 1 when there is any. Through the API, not the CLI: dependency-cruiser 18's CLI refuses Node 20.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

/** The shortest path from `start` to `goal` over `edges` (from → to → imports), or undefined. */
function shortestPath(edges, start, goal) {
  const cameFrom = new Map([[start, undefined]]);
  for (const queue = [start]; queue.length > 0;) {
    const node = queue.shift();
    if (node === goal) {
      const path = [];
      for (let at = goal; at !== undefined; at = cameFrom.get(at)) path.unshift(at);
      return path;
    }
    for (const next of edges.get(node)?.keys() ?? []) {
      if (cameFrom.has(next)) continue;
      cameFrom.set(next, node);
      queue.push(next);
    }
  }
  return undefined;
}

/** For each edge that lies on a cycle, the shortest such cycle: [from, to, …, from]. */
function cyclesThroughEdges(edges) {
  return [...edges].flatMap(([from, targets]) =>
    [...targets.keys()]
      .map((to) => shortestPath(edges, to, from))
      .filter(Boolean)
      .map((back) => [from, ...back]),
  );
}

/** The graph of `nameOf(file)` nodes: from → to → the file imports that make up that edge. */
function collapse(modules, nameOf, keepImport) {
  const edges = new Map();
  for (const { source, dependencies } of modules) {
    for (const dependency of dependencies.filter(keepImport)) {
      const [from, to] = [nameOf(source), nameOf(dependency.resolved)];
      if (from === to) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      const imports = edges.get(from).get(to) ?? new Set();
      edges.get(from).set(to, imports.add(`${source} → ${dependency.resolved}`));
    }
  }
  return edges;
}

process.chdir(fileURLToPath(new URL('..', import.meta.url)));
const options = await extractDepcruiseOptions('./.dependency-cruiser.cjs');
const sourceFolders = readdirSync('.').filter((entry) => new RegExp(options.includeOnly).test(`${entry}/`));
const tsConfig = extractTSConfig(options.tsConfig.fileName);
const { modules, summary } = (await cruise(sourceFolders, options, undefined, { tsConfig })).output;

const violations = summary.violations.map(({ rule, from, to }) => `${rule.name}  ${from} → ${to}`);
// A file cycle once, whichever of its imports it was found through.
const isRuntime = (dependency) => !dependency.dependencyTypes.includes('type-only');
const runtimeImports = collapse(modules, (file) => file, isRuntime);
const fileCycles = new Map(
  cyclesThroughEdges(runtimeImports).map((cycle) => [[...cycle.slice(1)].sort().join(), cycle]),
);
for (const cycle of fileCycles.values()) violations.push(`no-runtime-cycle  ${cycle.join(' → ')}`);
// A folder cycle once per folder import on it, with the file imports that make that one up: a to-do list.
// Type-only imports count: a folder that names another's types depends on it as much as on its code.
const topFolder = (file) => file.split('/')[0];
const folderImports = collapse(modules, topFolder, () => true);
for (const [from, to, ...back] of cyclesThroughEdges(folderImports)) {
  const fileImports = [...folderImports.get(from).get(to)].map((fileImport) => `\n    ${fileImport}`);
  violations.push(`no-folder-cycle  ${[from, to, ...back].join(' → ')}${fileImports.join('')}`);
}
for (const violation of violations) console.log(violation);
console.log(`${violations.length} violations in ${summary.totalCruised} files of ${sourceFolders.join(', ')}`);
process.exitCode = violations.length > 0 ? 1 : 0;
