// The XState driver (tests/rendering/test_xstate.py): each case is a status, a context and an event; the
// answer is the status XState's own transition function reaches and the actions it runs.
import { transition } from "xstate";
import * as Lifecycle from "./lifecycle_xstate.js";
import { serve } from "./io.js";

// Another spec's export, in the same directory, has the same shape; a request names the one it is for.
type Module = typeof Lifecycle;
const modules = new Map<string, Module>([["lifecycle_xstate", Lifecycle]]);

async function load(name: string | undefined): Promise<Module> {
  const wanted = name ?? "lifecycle_xstate";
  if (!/^[a-z_]+$/.test(wanted)) throw new Error(`bad module name ${wanted}`);
  let module = modules.get(wanted);
  if (module === undefined) {
    module = (await import(new URL(`./${wanted}.ts`, import.meta.url).href)) as Module;
    modules.set(wanted, module);
  }
  return module;
}

interface Case {
  status: Lifecycle.Status;
  context: Lifecycle.LifecycleContext;
  event: Lifecycle.LifecycleEvent;
}

await serve(async (request) => {
  const { machine } = await load((request as { module?: string }).module);
  return (request as { cases: Case[] }).cases.map((c) => {
    const snapshot = machine.resolveState({ value: c.status, context: c.context });
    const [next, actions] = transition(machine, snapshot, c.event);
    return {
      status: next.value,
      actions: actions.map((a) => (a.params === undefined ? [a.type] : [a.type, a.params])),
    };
  });
});
