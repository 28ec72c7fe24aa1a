package io.capprune.spark.train;

import io.capprune.core.prune.TrainingState;
import io.capprune.core.prune.UpdateSummary;
import io.capprune.spark.data.Shard;
import org.apache.spark.api.java.JavaRDD;

/**
 * Steps with the training state on the driver ({@code cap.spark.update-on = driver}, the default):
 * the exchange publishes the weights and sums the partitions' gradients ({@link GradientExchange}),
 * and the driver applies the update ({@link DriverStep}). The state is the driver's all along, so
 * there is nothing to bring back at a boundary.
 */
final class DriverSteps implements DistributedTrainer.Steps {
  private final GradientExchange exchange;
  private final DriverStep driver;

  DriverSteps(GradientExchange exchange, DriverStep driver) {
    this.exchange = exchange;
    this.driver = driver;
  }

  @Override
  public DistributedTrainer.StepOutcome run(
      JavaRDD<Shard> shards, TrainingState state, long step, long[] batch) {
    GradientExchange.Result exchanged = exchange.calculate(shards, step, batch, driver);
    long updateStart = System.nanoTime();
    UpdateSummary s = driver.apply(exchanged.sum());
    return new DistributedTrainer.StepOutcome(
        exchanged.sum().terms(),
        exchanged.sum().examples(),
        s,
        exchanged.timings().withUpdate((System.nanoTime() - updateStart) / 1e9));
  }

  @Override
  public void toDriver(TrainingState state, long step) {}

  @Override
  public void fromDriver() {}

  @Override
  public int maskBroadcasts() {
    return exchange.maskBroadcasts();
  }

  @Override
  public void close() {
    try {
      driver.close();
    } finally {
      exchange.close();
    }
  }
}
