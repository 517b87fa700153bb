// One JSON request per input line, one canonical JSON answer per output line, answered in turn
// (the test holds one process open and asks it case after case).
import { createInterface } from "node:readline";
import { canonical } from "./canonical.js";

export async function serve(answer: (request: unknown) => unknown): Promise<void> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === "") continue;
    let reply: unknown;
    try {
      reply = await answer(JSON.parse(line));
    } catch (error) {
      reply = { driverError: String((error as Error).stack ?? error) };
    }
    process.stdout.write(canonical(reply) + "\n");
  }
}
