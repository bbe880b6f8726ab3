import type { ArtifactsConfig } from '../config';
import type { ArtifactStore } from './artifacts';
import { FsArtifactStore } from './fsArtifacts';
import { S3ArtifactStore } from './s3Artifacts';

/** The artifact store the server's config names (NIGHTSHIFT_ARTIFACTS); one per process, shared by its users. */
export function openArtifactStore(config: { artifacts: ArtifactsConfig }): ArtifactStore {
  return config.artifacts.driver === 's3'
    ? new S3ArtifactStore(config.artifacts)
    : new FsArtifactStore(config.artifacts.dir);
}
