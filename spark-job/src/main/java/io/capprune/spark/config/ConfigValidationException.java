package io.capprune.spark.config;

/** A configuration value that cannot be used. The message starts with the full key. */
public final class ConfigValidationException extends RuntimeException {
  private static final long serialVersionUID = 1L;
  private final String key;

  public ConfigValidationException(String key, String problem) {
    super(key + ": " + problem);
    this.key = key;
  }

  public String key() {
    return key;
  }
}
