package io.capprune.core.glue;

/** A GLUE file that cannot be read as its task's format; the message names the file and line. */
public final class GlueFormatException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String source;
  private final int line;

  public GlueFormatException(String source, int line, String message) {
    super(source + ", line " + line + ": " + message);
    this.source = source;
    this.line = line;
  }

  public String source() {
    return source;
  }

  /** 1-based line number in the file. */
  public int line() {
    return line;
  }
}
