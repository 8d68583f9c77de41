import { join } from "node:path";
import { tmpdir } from "node:os";
import { rm } from "node:fs/promises";
import { DockerEngine } from "../src/runtime/docker-engine.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { FakeRuntime } from "../src/runtime/fake-runtime.js";
import { CONTRACT_IMAGE, runtimeContract } from "./support/runtime-contract.js";

const helperDir = join(tmpdir(), `diego-contract-helper-${process.pid}`);
const docker = new DockerRuntime({ helperDir });

beforeAll(() => new DockerEngine(docker, helperDir).prepareHelper(CONTRACT_IMAGE));
afterAll(() => rm(helperDir, { recursive: true, force: true }));

runtimeContract("fake", () => new FakeRuntime());
runtimeContract("docker", () => docker);
