package io.capprune.spark.worker;

import io.capprune.core.prune.TrainingState;
import java.io.Serializable;
import org.apache.spark.broadcast.Broadcast;

/**
 * Brings the training state an executor keeps ({@link ResidentStepTask}) back to the driver, at
 * epoch boundaries (snapshots, dev scores, SnC banks) and at the end of training: a copy made on
 * the executor's heap from its device, serialised as the task's result.
 *
 * @param published the publication the executor's state started from
 * @param step the step the driver expects the state at
 */
public record ResidentStateTask(
    TaskSettings settings, Broadcast<TrainingState> published, long step) implements Serializable {

  public TrainingState run() {
    return WorkerRuntime.get()
        .exclusive(
            settings.useGpu(),
            device -> {
              ResidentTraining r =
                  WorkerContext.on(device, settings.threadsForTask())
                      .residentOrNull(ResidentStepTask.keyOf(published));
              if (r == null || r.state.step() != step) {
                throw new IllegalStateException(
                    "the driver expects the training state at step "
                        + step
                        + ", but this executor "
                        + (r == null
                            ? "keeps none (it was lost or replaced)"
                            : "keeps it at step " + r.state.step())
                        + "; continue the run from its last snapshot with --resume");
              }
              // up to date on the heap while this task holds the device; Spark serialises the
              // result after the lock is released, and no step runs then: the driver waits for
              // this pull before it starts the next one. No copy: at BERT-base size one is ~1.3 GB
              r.state.syncFromDevice();
              return r.state;
            });
  }
}
