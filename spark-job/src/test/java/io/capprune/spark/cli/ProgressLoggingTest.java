package io.capprune.spark.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.appender.AbstractAppender;
import org.apache.logging.log4j.core.config.Property;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilder;
import org.apache.logging.log4j.core.config.builder.api.ConfigurationBuilderFactory;
import org.apache.logging.log4j.core.config.builder.impl.BuiltConfiguration;
import org.junit.jupiter.api.Test;

/**
 * The progress logger under log configurations a cluster may have; each test has its own
 * LoggerContext.
 */
class ProgressLoggingTest {

  /** A cluster's site config: the root at WARN, io.capprune not named. */
  @Test
  void rootAtWarnWithoutAnIoCappruneLoggerPinsItAtInfoAndTheLinesReachTheRootAppender() {
    LoggerContext context = context(Level.WARN, null);
    try {
      Recorder recorder = recorder(context);
      assertFalse(context.getLogger("io.capprune.spark.pipeline.CapPipeline").isInfoEnabled());

      assertEquals(ProgressLogging.Outcome.PINNED, ProgressLogging.ensureInfo(context));

      context.getLogger("io.capprune.spark.train.DistributedTrainer").info("prune step 4/32");
      context.getLogger("org.apache.spark.SparkContext").info("Spark noise");
      context.getLogger("org.apache.spark.SparkContext").warn("Spark warning");
      assertEquals(List.of("prune step 4/32", "Spark warning"), recorder.messages);
      assertFalse(context.getLogger("io.capprune").isDebugEnabled());
      // idempotent: the second call sees the logger it added
      assertEquals(ProgressLogging.Outcome.USER_CONFIGURED, ProgressLogging.ensureInfo(context));
    } finally {
      context.stop();
    }
  }

  /**
   * Spark's default configuration (root INFO): progress shows until the SparkContext sets the root
   * to WARN (SparkContexts calls setLogLevel), unless io.capprune has a level of its own.
   */
  @Test
  void theProgressSurvivesSparkSettingTheRootToWarnOnceTheContextExists() {
    LoggerContext context = context(Level.INFO, null);
    try {
      assertEquals(ProgressLogging.Outcome.PINNED, ProgressLogging.ensureInfo(context));
      sparkSetLogLevel(context, Level.WARN);
      assertTrue(context.getLogger("io.capprune.spark.train.DistributedTrainer").isInfoEnabled());
      assertFalse(context.getLogger("org.apache.spark.SparkContext").isInfoEnabled());
    } finally {
      context.stop();
    }
    LoggerContext without = context(Level.INFO, null);
    try {
      sparkSetLogLevel(without, Level.WARN);
      assertFalse(
          without.getLogger("io.capprune.spark.train.DistributedTrainer").isInfoEnabled(),
          "the problem this class solves");
    } finally {
      without.stop();
    }
  }

  @Test
  void aLevelTheUserGaveIoCappruneIsKept() {
    LoggerContext context = context(Level.WARN, Level.ERROR);
    try {
      assertEquals(ProgressLogging.Outcome.USER_CONFIGURED, ProgressLogging.ensureInfo(context));
      assertFalse(context.getLogger("io.capprune.spark.pipeline.CapPipeline").isWarnEnabled());
    } finally {
      context.stop();
    }
  }

  @Test
  void aRootFinerThanInfoIsKeptForIoCapprune() {
    LoggerContext context = context(Level.DEBUG, null);
    try {
      assertEquals(ProgressLogging.Outcome.PINNED, ProgressLogging.ensureInfo(context));
      sparkSetLogLevel(context, Level.WARN);
      assertTrue(context.getLogger("io.capprune.x").isDebugEnabled(), "not raised to INFO");
    } finally {
      context.stop();
    }
  }

  /** What SparkContext.setLogLevel does (Utils.setLogLevel): the root LoggerConfig's level only. */
  private static void sparkSetLogLevel(LoggerContext context, Level level) {
    context.getConfiguration().getRootLogger().setLevel(level);
    context.updateLoggers();
  }

  /** The process's own logging (log4j2-test.properties names io.capprune): left as configured. */
  @Test
  void theProcessWideCallRespectsTheTestConfiguration() {
    assertEquals(ProgressLogging.Outcome.USER_CONFIGURED, ProgressLogging.ensureInfo());
  }

  private static LoggerContext context(Level root, Level capprune) {
    ConfigurationBuilder<BuiltConfiguration> b =
        ConfigurationBuilderFactory.newConfigurationBuilder();
    b.setConfigurationName("progress-logging-test");
    b.add(b.newRootLogger(root));
    if (capprune != null) {
      b.add(b.newLogger("io.capprune", capprune));
    }
    LoggerContext context = new LoggerContext("progress-logging-test-" + System.nanoTime());
    context.start(b.build());
    return context;
  }

  private static Recorder recorder(LoggerContext context) {
    Recorder recorder = new Recorder();
    recorder.start();
    context.getConfiguration().addAppender(recorder);
    context.getConfiguration().getRootLogger().addAppender(recorder, null, null);
    context.updateLoggers();
    return recorder;
  }

  private static final class Recorder extends AbstractAppender {
    final List<String> messages = new java.util.concurrent.CopyOnWriteArrayList<>();

    Recorder() {
      super("recorder", null, null, true, Property.EMPTY_ARRAY);
    }

    @Override
    public void append(LogEvent event) {
      messages.add(event.getMessage().getFormattedMessage());
    }
  }
}
