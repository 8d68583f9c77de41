import type { ExecIo } from "../runtime/container-runtime.js";

/**
 * Output of a followed process that comes before the step that shows it is replayed to (after a restart
 * of the cell, see follow-plan.ts): kept in order, then passed on once `attach` names the step's io.
 */
export class DeferredIo implements ExecIo {
  private target?: ExecIo;
  private readonly early: Array<["stdout" | "stderr", Buffer]> = [];

  stdout(chunk: Buffer): void {
    this.pass("stdout", chunk);
  }

  stderr(chunk: Buffer): void {
    this.pass("stderr", chunk);
  }

  attach(io: ExecIo): void {
    this.target = io;
    for (const [stream, chunk] of this.early.splice(0)) io[stream](chunk);
  }

  private pass(stream: "stdout" | "stderr", chunk: Buffer): void {
    if (this.target) this.target[stream](chunk);
    else this.early.push([stream, Buffer.from(chunk)]);
  }
}
