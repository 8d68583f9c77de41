// The configuration file the cell's Debian package installs as /etc/diego/cell.json: every setting of
// the cell documented, the ones a plain host needs set (docs/deployment.md, "Cells on plain hosts").
// Run as a program it prints the file: node --import tsx src/packaged-config.ts
import { configTemplate } from "@diego/kit";
import { cellSettings } from "./config.js";

/** Replaced by the host's name when the package is installed (the cell id must be unique). */
export const CELL_ID_PLACEHOLDER = "@HOSTNAME@";

export function packagedConfig(): string {
  return configTemplate(cellSettings, {
    program: "diego-cell",
    summary: "settings of the diego cell agent (diego-cell.service reads this file; see `diego-cell --help`).",
    envPrefix: "DIEGO_CELL",
    values: {
      cellId: CELL_ID_PLACEHOLDER,
      bbsAddress: "127.0.0.1:8889",
      workDir: "/var/lib/diego-cell",
      drainTimeout: 60_000,
    },
  });
}

if (import.meta.url === `file://${process.argv[1]}`) process.stdout.write(packagedConfig());
