package io.capprune.spark.worker;

import io.capprune.core.prune.DeviceDriverUpdate;
import io.capprune.core.prune.TrainingState;

/**
 * The training state an executor keeps next to its worker when the update runs there ({@code
 * cap.spark.update-on = executor}): the state as the driver last published it, trained on since,
 * with its {@link DeviceDriverUpdate} holding it on the executor's device. One per executor JVM
 * ({@link WorkerContext}); only touched under {@link WorkerRuntime#exclusive}.
 *
 * <p>It also remembers the result of its last step, so that a task Spark runs again after the step
 * went through (its result was lost on the way) answers with that result instead of training the
 * step twice.
 */
final class ResidentTraining implements AutoCloseable {
  final Object key;
  final DeviceDriverUpdate update;
  final TrainingState state;
  private ResidentStepResult last;

  /**
   * @param key the publication it started from (a broadcast of this Spark application)
   * @param state a copy of the published state, owned by this object
   */
  ResidentTraining(Object key, DeviceDriverUpdate update, TrainingState state) {
    this.key = key;
    this.update = update;
    this.state = state;
  }

  /** The result of step {@code step} if it is the last step this state took, else null. */
  ResidentStepResult replayOf(long step) {
    return last != null && last.step() == step && state.step() == step + 1 ? last : null;
  }

  void stepped(ResidentStepResult result) {
    last = result;
  }

  /** Lets the device's copy go without bringing it back: a replaced state is not read again. */
  @Override
  public void close() {
    update.discard();
  }
}
