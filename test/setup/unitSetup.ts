import { bundleSuiteWorkflows, makeSuiteDir } from './suite';

/**
 * The unit tier (`npm run test:unit`): Node alone, no Temporal server: the suite's scratch dir and the workflow bundle
 * the replay tests replay histories against (bundling needs no server).
 */
export default async function unitSetup(): Promise<void> {
  await bundleSuiteWorkflows(makeSuiteDir());
}
