/**
 * Shapes of well-known services' credentials. The diff rules flag them when committed; the redactor blanks them in
 * logs and transcripts even when they are not one of the run's secrets (an agent may find one in the repo).
 */
export interface TokenShape {
  /** For a reviewer: "adds what looks like an AWS access key". */
  what: string;
  /** For a log: `[redacted:aws-access-key]`. */
  id: string;
  /** How every such token starts: while streamed text ends in one of these (or a start of one), it is held back. */
  prefixes: string[];
  /** The whole token; no flags (callers add `g`). Tokens start where a word does. */
  source: string;
}

const START = '(?<![A-Za-z0-9_-])';
const shape = (what: string, id: string, prefixes: string[], body: string): TokenShape => ({
  what,
  id,
  prefixes,
  source: `${START}${body}(?![A-Za-z0-9_-])`,
});

export const TOKEN_SHAPES: TokenShape[] = [
  shape('AWS access key', 'aws-access-key', ['AKIA', 'ASIA'], '(?:AKIA|ASIA)[0-9A-Z]{16}'),
  shape('GitHub token', 'github-token', ['ghp_', 'gho_', 'ghu_', 'ghs_', 'ghr_'], 'gh[pousr]_[A-Za-z0-9]{36,}'),
  shape('GitHub token', 'github-token', ['github_pat_'], 'github_pat_[A-Za-z0-9_]{22,}'),
  shape('GitLab token', 'gitlab-token', ['glpat-'], 'glpat-[A-Za-z0-9_-]{20,}'),
  shape(
    'Slack token',
    'slack-token',
    ['xoxa-', 'xoxb-', 'xoxp-', 'xoxo-', 'xoxs-', 'xoxr-'],
    'xox[abposr]-[A-Za-z0-9-]{10,}',
  ),
  shape('Anthropic API key', 'anthropic-key', ['sk-ant-'], 'sk-ant-[A-Za-z0-9_-]{20,}'),
  shape('OpenAI API key', 'openai-key', ['sk-'], 'sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}'),
  shape('Stripe secret key', 'stripe-key', ['sk_live_', 'rk_live_'], '[rs]k_live_[0-9A-Za-z]{20,}'),
  shape('Google API key', 'google-api-key', ['AIza'], 'AIza[0-9A-Za-z_-]{35}'),
  shape('npm token', 'npm-token', ['npm_'], 'npm_[A-Za-z0-9]{36}'),
];

/** A PEM private key block's first line. */
export const PRIVATE_KEY_BEGIN = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
/** A whole PEM private key block. */
export const PRIVATE_KEY_BLOCK = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g;
