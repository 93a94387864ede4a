// The one listener a state machine tells about each applied batch's changes (StateMachine.onApply).
import type { KvEvent } from '../api/command.js';
import type { ApplyListener } from './state-machine.js';

export class ApplyNotifier {
  private listener: ApplyListener | undefined;

  set(listener: ApplyListener | undefined): void {
    this.listener = listener;
  }

  notify(events: KvEvent[]): void {
    if (events.length === 0) return;
    try {
      this.listener?.(events);
    } catch {
      // A watcher's bug must not fail the apply: the batch is already committed.
    }
  }
}
