// The console's script, bundled from src/web/app.ts with esbuild when the console starts (a few tens
// of milliseconds): no build step to forget, and the page always matches the source.
import { build } from "esbuild";

export async function bundleApp(): Promise<string> {
  const result = await build({
    entryPoints: [new URL("./web/app.ts", import.meta.url).pathname],
    bundle: true,
    write: false,
    format: "esm",
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}
