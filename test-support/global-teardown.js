export default async function globalTeardown() {
  await globalThis.__diegoTestEtcd?.remove();
}
