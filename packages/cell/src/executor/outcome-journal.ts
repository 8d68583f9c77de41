import { mkdir, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import { parseRecord, type JournalRecord } from "./outcome-record.js";

const SUFFIX = ".json";
const TEMP = ".tmp";

/** A file of the journal that could not be read back, and why (it is set aside as `<file>.bad`). */
export interface BadRecord {
  file: string;
  error: string;
}

/**
 * One small file per task in `<work-dir>/journal` (docs/reliability.md, "The cell keeps every
 * outcome"): written to a temporary file, fsynced, renamed over the task's file, and the directory
 * fsynced, so a crash at any point leaves either the old record or the new one, never a torn one.
 * Writes of one task go in order; a later write replaces an earlier one.
 */
export class OutcomeJournal {
  private readonly queues = new Map<string, Promise<void>>();

  private constructor(readonly dir: string) {}

  /** Opens (creating) the journal directory and reads every record in it. */
  static async open(dir: string): Promise<{ journal: OutcomeJournal; records: JournalRecord[]; bad: BadRecord[] }> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const journal = new OutcomeJournal(dir);
    const records: JournalRecord[] = [];
    const bad: BadRecord[] = [];
    for (const name of (await readdir(dir)).sort()) {
      const file = join(dir, name);
      if (name.endsWith(TEMP)) {
        await unlink(file).catch(() => undefined); // a write a crash interrupted before its rename
        continue;
      }
      if (!name.endsWith(SUFFIX)) continue;
      try {
        const record = parseRecord(await readFile(file, "utf8"));
        if (fileName(record.taskGuid) !== name) throw new Error(`taskGuid: ${record.taskGuid} is not the file's task`);
        records.push(record);
      } catch (err) {
        bad.push({ file, error: (err as Error).message });
        await rename(file, `${file}.bad`).catch(() => undefined);
      }
    }
    await fsyncDir(dir);
    return { journal, records, bad };
  }

  /** Durably records the task's latest record (replacing the one before). */
  write(record: JournalRecord): Promise<void> {
    const text = JSON.stringify(record);
    return this.enqueue(record.taskGuid, async () => {
      const file = join(this.dir, fileName(record.taskGuid));
      const temp = `${file}${TEMP}`;
      const handle = await open(temp, "w", 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, file);
      await fsyncDir(this.dir);
    });
  }

  /** Durably forgets the task (no error when it has no record). */
  delete(taskGuid: string): Promise<void> {
    return this.enqueue(taskGuid, async () => {
      try {
        await unlink(join(this.dir, fileName(taskGuid)));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
        throw err;
      }
      await fsyncDir(this.dir);
    });
  }

  private enqueue(taskGuid: string, op: () => Promise<void>): Promise<void> {
    const before = this.queues.get(taskGuid) ?? Promise.resolve();
    const next = before.then(op, op);
    const settled = next.catch(() => undefined);
    this.queues.set(taskGuid, settled);
    void settled.then(() => {
      if (this.queues.get(taskGuid) === settled) this.queues.delete(taskGuid);
    });
    return next;
  }
}

/** A task guid (a-z A-Z 0-9 _ -, checked at DesireTask) is its file's name; anything else is escaped. */
function fileName(taskGuid: string): string {
  return `${encodeURIComponent(taskGuid)}${SUFFIX}`;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
