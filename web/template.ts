/** What the spec editors start with: the bundled example (examples/fix-rounding.md), to edit rather than type. */
export const SPEC_TEMPLATE = `---
title: Fix rounding in invoice totals
repo: billing
agent:
  kind: claude-code
  model: claude-sonnet-4-5
scope:
  allow: ["src/**", "test/**"]
  deny: [".github/**", "**/.env*"]
checks:
  - { name: test, run: "node --test test/" }
review:
  maxDiffLines: 200
approval: { required: true, timeout: 72h }
sandbox: { timeout: 10m }
limits: { iterations: 3 }
---
Invoice totals are off by a cent for some currencies. Round half-even at the end, not per line.
`;
