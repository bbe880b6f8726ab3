import { campaignStatement } from '../../proof/campaign';
import { signStatement } from '../../proof/bundle';
import { ensureSigningKey } from '../../proof/keys';
import type { CampaignProofInput } from '../../contracts/campaign';
import type { ActivityDeps } from '../../runtime/deps';

export function campaignProofActivities(deps: ActivityDeps) {
  return {
    /**
     * The campaign's proof as it ended (proof/campaign.ts), signed with the server's key, in the artifact store beside
     * its runs' proofs: its digest is the campaign's `proofId`. Each end is signed again (a retry ends it anew).
     */
    async writeCampaignProof(input: CampaignProofInput): Promise<string> {
      const statement = campaignStatement(input, {
        serverUrl: deps.publicUrl,
        finishedOn: new Date().toISOString(),
      });
      return deps.store.put(signStatement(statement, ensureSigningKey(deps.home)));
    },
  };
}
