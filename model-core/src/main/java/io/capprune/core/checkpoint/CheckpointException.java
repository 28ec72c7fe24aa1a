package io.capprune.core.checkpoint;

/**
 * A checkpoint (config.json, safetensors, vocabulary) that cannot be used; the message names the
 * file and the key or tensor.
 */
public class CheckpointException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public CheckpointException(String message) {
    super(message);
  }

  public CheckpointException(String message, Throwable cause) {
    super(message, cause);
  }
}
