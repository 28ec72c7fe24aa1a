package io.capprune.spark.cli;

import org.apache.logging.log4j.Level;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configuration;
import org.apache.logging.log4j.core.config.LoggerConfig;

/**
 * Keeps the job's one-line-per-step progress (logger {@code io.capprune}) at INFO when the job runs
 * under a log configuration that does not name it. bin/cap-prune and the deploy/ wrappers pass
 * conf/log4j2.properties, but under a plain {@code spark-submit} (the Airflow DAG; Spark's default
 * configuration; a cluster's site log4j2.properties) {@code io.capprune} inherits the root's level,
 * and that is WARN at the latest once the SparkContext exists ({@code SparkContexts} calls {@code
 * setLogLevel("WARN")}, which sets the root logger): every progress line would be gone. So the
 * logger gets a level of its own, INFO (or the root's, if that is finer), which Spark's {@code
 * setLogLevel} does not touch. A level the user gave {@code io.capprune} (or a parent of it other
 * than the root) is left alone.
 */
public final class ProgressLogging {

  /**
   * The logger every progress line goes to (its children: CapPipeline, DistributedTrainer, ...).
   */
  public static final String LOGGER = "io.capprune";

  /** What {@link #ensureInfo} found and did. */
  public enum Outcome {
    /** {@code io.capprune} had no level of its own: it now has INFO, or the root's if finer. */
    PINNED,
    /** The configuration names {@code io.capprune} (or {@code io}): the user's choice stands. */
    USER_CONFIGURED,
    /**
     * The logging backend is not log4j2 (no log4j-core, or SLF4J bound elsewhere): nothing to do.
     */
    NOT_LOG4J2
  }

  private ProgressLogging() {}

  /** Applies the rule to the process's logging, as at job start. */
  public static Outcome ensureInfo() {
    try {
      return Log4j2.ensureInfo();
    } catch (LinkageError noLog4jCore) {
      // spark-submit always brings log4j-core; an embedding application may not.
      return Outcome.NOT_LOG4J2;
    }
  }

  /** Applies the rule to {@code context}; for tests, which must not touch the process's logging. */
  public static Outcome ensureInfo(LoggerContext context) {
    Configuration config = context.getConfiguration();
    LoggerConfig effective = config.getLoggerConfig(LOGGER);
    if (!effective.getName().equals(LoggerConfig.ROOT) && !effective.getName().isEmpty()) {
      return Outcome.USER_CONFIGURED;
    }
    Level root = effective.getLevel();
    Level level = root != null && root.isLessSpecificThan(Level.DEBUG) ? root : Level.INFO;
    // A logger of its own, additive: its events still go to the root's appenders, whose level
    // (WARN) filters only the root's own events, not those a child passes up.
    config.addLogger(LOGGER, new LoggerConfig(LOGGER, level, true));
    context.updateLoggers();
    return Outcome.PINNED;
  }

  /**
   * Holds the log4j-core references, so a missing log4j-core fails here, inside the catch above.
   */
  private static final class Log4j2 {
    static Outcome ensureInfo() {
      if (LogManager.getContext(false) instanceof LoggerContext core) {
        return ProgressLogging.ensureInfo(core);
      }
      return Outcome.NOT_LOG4J2;
    }
  }
}
