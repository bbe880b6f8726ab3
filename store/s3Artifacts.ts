import {
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { createReadStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import type { ArtifactsConfig } from '../config';
import {
  ArtifactNotFoundError,
  artifactIdOf,
  artifactIdOfFile,
  checkArtifactId,
  checkArtifactName,
  type ArtifactStore,
} from './artifacts';

export type S3ArtifactsConfig = Extract<ArtifactsConfig, { driver: 's3' }>;

/**
 * A client for the configured bucket: path-style for S3-compatible servers, which rarely have per-bucket host names.
 */
export function s3ClientFor(config: S3ArtifactsConfig): S3Client {
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint, forcePathStyle: true } : {}),
    ...(config.credentials ? { credentials: config.credentials } : {}),
    // Checksums only where S3 requires them: S3-compatible servers often lack the newer aws-chunked trailers.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/**
 * Artifacts as objects `<prefix><id>` in one bucket, written once: an id that is there already is not uploaded again.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly location: string;
  private readonly client: S3Client;

  constructor(private readonly config: S3ArtifactsConfig) {
    this.location = `s3://${config.bucket}/${config.prefix}`;
    this.client = s3ClientFor(config);
  }

  async put(content: string | Buffer): Promise<string> {
    const bytes = typeof content === 'string' ? Buffer.from(content) : content;
    const id = artifactIdOf(bytes);
    await this.upload(id, bytes, bytes.length);
    return id;
  }

  async putFile(source: string): Promise<string> {
    const id = await artifactIdOfFile(source);
    const { size } = await fs.stat(source);
    await this.upload(id, () => createReadStream(source), size);
    return id;
  }

  async get(id: string): Promise<Buffer> {
    const body = await this.open(id);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async open(id: string): Promise<Readable> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key: this.keyOf(id) }));
      return object.Body as Readable;
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'NoSuchKey')
        throw new ArtifactNotFoundError(id, this.location);
      throw this.failure(err, `reading ${id}`);
    }
  }

  async has(id: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.config.bucket, Key: this.keyOf(id) }));
      return true;
    } catch (err) {
      if (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404) return false;
      throw this.failure(err, `looking for ${id}`);
    }
  }

  async setName(name: string, id: string): Promise<void> {
    const Key = `${this.config.prefix}names/${checkArtifactName(name)}`;
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.config.bucket, Key, Body: checkArtifactId(id), ContentType: 'text/plain' }),
      );
    } catch (err) {
      throw this.failure(err, `naming ${id} ${name}`);
    }
  }

  async named(name: string): Promise<string | undefined> {
    const Key = `${this.config.prefix}names/${checkArtifactName(name)}`;
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.config.bucket, Key }));
      return checkArtifactId((await object.Body!.transformToString()).trim());
    } catch (err) {
      if (err instanceof S3ServiceException && err.name === 'NoSuchKey') return undefined;
      throw this.failure(err, `reading the name ${name}`);
    }
  }

  private keyOf(id: string): string {
    return this.config.prefix + checkArtifactId(id);
  }

  /** `body` is a function for files, so nothing is opened when the artifact is there already. */
  private async upload(id: string, body: Buffer | (() => Readable), size: number): Promise<void> {
    if (await this.has(id)) return;
    const input: PutObjectCommandInput = {
      Bucket: this.config.bucket,
      Key: this.keyOf(id),
      ContentLength: size,
      ContentType: 'application/octet-stream',
      // The id is the sha256 of the bytes: S3 checks it and refuses an upload that arrived damaged.
      ChecksumSHA256: Buffer.from(id, 'hex').toString('base64'),
    };
    try {
      await this.client.send(new PutObjectCommand({ ...input, Body: typeof body === 'function' ? body() : body }));
    } catch (err) {
      throw this.failure(err, `storing ${id}`);
    }
  }

  /** One line naming the store, the operation and S3's answer. */
  private failure(err: unknown, what: string): Error {
    const e = err as Error;
    return new Error(`artifact store ${this.location}: ${what} failed: ${e.name}: ${e.message.split('\n')[0]}`, {
      cause: err,
    });
  }
}
