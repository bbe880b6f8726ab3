import type { ActivityDeps } from '../../runtime/deps';
import { claimWorkspace } from './claimWorkspace';
import { findDriver } from './findDriver';
import { provisionWorkspace } from './provisionWorkspace';
import { teardownWorkspace } from './teardownWorkspace';

export function workspaceActivities(deps: ActivityDeps) {
  return {
    claimWorkspace: claimWorkspace(deps),
    findDriver: findDriver(deps),
    provisionWorkspace: provisionWorkspace(deps),
    teardownWorkspace: teardownWorkspace(deps),
  };
}
