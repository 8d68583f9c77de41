import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** A sealed value starts with a 0 byte, which no protobuf message can (field number 0 does not exist). */
const MARK = 0x00;
const VERSION = 0x01;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Encryption at rest of the tasks that carry secrets (image_password, secret_env): AES-256-GCM under
 * operator keys named by id (docs/security.md). Several keys may be configured; the active one seals,
 * any of them opens, so keys rotate without downtime. A value without secrets is stored as it is.
 * Layout: 0x00, version, key id length, key id, 12-byte IV, 16-byte tag, ciphertext of the Task bytes.
 */
export class TaskSealer {
  private readonly keys = new Map<string, Buffer>();

  /** `keys`: id → passphrase (the AES key is its SHA-256, as Diego's BBS does); `activeKeyId` seals. */
  constructor(
    keys: Record<string, string>,
    readonly activeKeyId: string,
  ) {
    for (const [id, phrase] of Object.entries(keys)) {
      if (!id || Buffer.byteLength(id) > 255)
        throw new Error(`encryption key id ${JSON.stringify(id)}: 1 to 255 bytes`);
      if (!phrase) throw new Error(`encryption key ${id} is empty`);
      this.keys.set(id, createHash("sha256").update(phrase).digest());
    }
    if (!this.keys.has(activeKeyId))
      throw new Error(`--active-key-id ${JSON.stringify(activeKeyId)} names none of the --encryption-keys`);
  }

  /** The value to store for these Task bytes: sealed under the active key when `secret` is true. */
  seal(bytes: Uint8Array, secret: boolean): Uint8Array {
    if (!secret) return bytes;
    const id = Buffer.from(this.activeKeyId);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.keys.get(this.activeKeyId)!, iv);
    const body = Buffer.concat([cipher.update(bytes), cipher.final()]);
    return Buffer.concat([Buffer.from([MARK, VERSION, id.length]), id, iv, cipher.getAuthTag(), body]);
  }

  /** The Task bytes of a stored value (opened when sealed); throws naming an unknown key id or damage. */
  open(value: Uint8Array): Uint8Array {
    return openValue(value, this.keys);
  }

  /** The key id a stored value is sealed under, or undefined when it is not sealed. */
  static keyIdOf(value: Uint8Array): string | undefined {
    if (value[0] !== MARK || value.length < 3) return undefined;
    return Buffer.from(value.subarray(3, 3 + value[2]!)).toString();
  }
}

/** Opens sealed values with `keys` (none: a sealed value cannot be read, and says why). */
export function openValue(value: Uint8Array, keys: ReadonlyMap<string, Buffer>): Uint8Array {
  if (value[0] !== MARK) return value;
  if (value[1] !== VERSION) throw new Error(`sealed task of unknown version ${value[1]}`);
  const idEnd = 3 + value[2]!;
  const id = Buffer.from(value.subarray(3, idEnd)).toString();
  const key = keys.get(id);
  if (!key) throw new Error(`task sealed under encryption key ${JSON.stringify(id)}, which is not configured`);
  const iv = value.subarray(idEnd, idEnd + IV_BYTES);
  const tag = value.subarray(idEnd + IV_BYTES, idEnd + IV_BYTES + TAG_BYTES);
  const decipher = createDecipheriv("aes-256-gcm", key, iv);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(value.subarray(idEnd + IV_BYTES + TAG_BYTES)), decipher.final()]);
}
