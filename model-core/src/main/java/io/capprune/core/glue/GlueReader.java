package io.capprune.core.glue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Reads one split of a GLUE task from its original TSV file, as Hugging Face's legacy {@code
 * glue_processors} do: UTF-8 with an optional BOM, tab-separated, no quoting (a {@code "} is a
 * literal character, {@code csv.QUOTE_NONE}), texts kept exactly as written.
 *
 * <p>Stricter than the processors: every row must have as many columns as the header (or the task's
 * fixed count), labels must be known and scores finite numbers. A bad row is an error naming the
 * file, the line and the value, unless skip-bad-rows is on (the QQP default), in which case it is
 * counted in {@link GlueData#skipped()}. Blank lines at the end of a file are ignored; a blank line
 * between rows is a bad row. Lines end at LF, CR LF or CR, like Python's universal newlines.
 *
 * <p>Immutable; configure with the {@code with...} methods.
 */
public final class GlueReader {
  private static final Logger LOG = LoggerFactory.getLogger(GlueReader.class);
  private static final char BOM = '\uFEFF';
  // Plain decimal numbers only: Java would also accept "NaN", "Infinity", "1f" and hex floats.
  private static final Pattern DECIMAL =
      Pattern.compile("[-+]?(\\d+(\\.\\d*)?|\\.\\d+)([eE][-+]?\\d+)?");

  private final GlueTask task;
  private final List<String> labels;
  private final boolean skipBadRows;

  private GlueReader(GlueTask task, List<String> labels, boolean skipBadRows) {
    this.task = task;
    this.labels = labels;
    this.skipBadRows = skipBadRows;
  }

  /** A reader with the task's default label order and bad-row policy. */
  public static GlueReader of(GlueTask task) {
    Objects.requireNonNull(task, "task");
    return new GlueReader(task, task.labels(), task.skipBadRowsByDefault());
  }

  /**
   * Overrides the label order, e.g. with a checkpoint's {@code id2label}: label id i is the row
   * whose label column equals {@code labels.get(i)}.
   */
  public GlueReader withLabels(List<String> newLabels) {
    Objects.requireNonNull(newLabels, "labels");
    if (task.isRegression()) {
      throw new IllegalArgumentException(
          "GLUE task "
              + task.dirName()
              + " is a regression task and has no labels, got "
              + newLabels);
    }
    if (newLabels.size() < 2) {
      throw new IllegalArgumentException(
          "labels for GLUE task " + task.dirName() + " need at least 2 entries, got " + newLabels);
    }
    if (new HashSet<>(newLabels).size() != newLabels.size()) {
      throw new IllegalArgumentException(
          "labels for GLUE task " + task.dirName() + " contain duplicates: " + newLabels);
    }
    return new GlueReader(task, List.copyOf(newLabels), skipBadRows);
  }

  /** Skip malformed rows (and count them) instead of failing on the first one. */
  public GlueReader withSkipBadRows(boolean skip) {
    return new GlueReader(task, labels, skip);
  }

  public GlueTask task() {
    return task;
  }

  public List<String> labels() {
    return labels;
  }

  public boolean skipBadRows() {
    return skipBadRows;
  }

  /** Reads {@code <glueDir>/<task dir>/<split>.tsv}, e.g. {@code glue_data/SST-2/dev.tsv}. */
  public GlueData readSplit(Path glueDir, String split) {
    return read(split, glueDir.resolve(task.dirName()).resolve(task.fileName(split)));
  }

  public GlueData read(String split, Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      return read(split, in, file.toString());
    } catch (IOException e) {
      throw new UncheckedIOException(file + ": cannot read: " + e, e);
    }
  }

  /**
   * Reads UTF-8 bytes (e.g. a Hadoop {@code FSDataInputStream}); the stream is not closed.
   *
   * @param source the file name or URI for messages
   */
  public GlueData read(String split, InputStream in, String source) {
    // Lines are split on bytes and decoded one by one, so a bad byte is reported at its own line
    // (a Reader decodes ahead of the line it returns).
    Utf8Lines lines = new Utf8Lines(in);
    return parse(split, source, lines::next);
  }

  /** Reads decoded text; the reader is not closed. */
  public GlueData read(String split, Reader in, String source) {
    BufferedReader r = in instanceof BufferedReader b ? b : new BufferedReader(in, 1 << 16);
    return parse(split, source, r::readLine);
  }

  private interface LineSource {
    /** The next line without its terminator, null at the end. */
    String next() throws IOException;
  }

  private GlueData parse(String split, String source, LineSource lines) {
    Parse p = new Parse(split, task.layout(split), source);
    try {
      String line;
      while ((line = lines.next()) != null) {
        p.accept(line);
      }
    } catch (CharacterCodingException e) {
      throw new GlueFormatException(source, p.lineNo + 1, "not valid UTF-8 (" + e + ")");
    } catch (IOException e) {
      throw new UncheckedIOException(source + ": read failed after line " + p.lineNo + ": " + e, e);
    }
    return p.finish();
  }

  /** Splits a byte stream at LF, CR LF or CR and decodes each line as strict UTF-8. */
  private static final class Utf8Lines {
    private final InputStream in;
    private final CharsetDecoder utf8 =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT)
            .onUnmappableCharacter(CodingErrorAction.REPORT);
    private final byte[] buf = new byte[1 << 16];
    private int pos;
    private int len;
    private byte[] line = new byte[256];
    private int lineLen;

    Utf8Lines(InputStream in) {
      this.in = Objects.requireNonNull(in, "in");
    }

    String next() throws IOException {
      lineLen = 0;
      if (!fill()) {
        return null;
      }
      int end = -1;
      while (end < 0 && fill()) {
        int start = pos;
        while (pos < len && buf[pos] != '\n' && buf[pos] != '\r') {
          pos++;
        }
        append(start, pos - start);
        if (pos < len) {
          end = buf[pos++];
        }
      }
      if (end == '\r' && peek() == '\n') {
        pos++;
      }
      boolean ascii = true;
      for (int i = 0; i < lineLen && ascii; i++) {
        ascii = line[i] >= 0;
      }
      return ascii
          ? new String(line, 0, lineLen, StandardCharsets.ISO_8859_1)
          : utf8.decode(ByteBuffer.wrap(line, 0, lineLen)).toString();
    }

    private void append(int start, int n) {
      if (lineLen + n > line.length) {
        line = Arrays.copyOf(line, Math.max(line.length * 2, lineLen + n));
      }
      System.arraycopy(buf, start, line, lineLen, n);
      lineLen += n;
    }

    private int peek() throws IOException {
      return fill() ? buf[pos] & 0xFF : -1;
    }

    private boolean fill() throws IOException {
      if (pos < len) {
        return true;
      }
      len = in.read(buf, 0, buf.length);
      pos = 0;
      return len > 0;
    }
  }

  /** The state of reading one file. */
  private final class Parse {
    final String split;
    final GlueTask.Layout layout;
    final String source;
    final Map<String, Integer> labelIds = new HashMap<>();
    final List<GlueExample> examples = new ArrayList<>();
    final List<String> skippedSamples = new ArrayList<>();
    int skipped;
    int lineNo;
    int columns;
    int colA;
    int colB = -1;
    int colLabel = -1;
    String columnNames;
    boolean started;
    int firstBlank;
    int blanks;

    Parse(String split, GlueTask.Layout layout, String source) {
      this.split = split;
      this.layout = layout;
      this.source = source;
      for (int i = 0; i < labels.size(); i++) {
        labelIds.put(labels.get(i), i);
      }
      if (!layout.header()) {
        columns = layout.columnCount();
        colA = layout.textA().index();
        colB = layout.textB() == null ? -1 : layout.textB().index();
        colLabel = layout.label() == null ? -1 : layout.label().index();
        columnNames = columns + " columns";
      }
    }

    void accept(String line) {
      lineNo++;
      if (!started) {
        started = true;
        // Python reads GLUE with utf-8-sig; MRPC's files start with a BOM.
        if (!line.isEmpty() && line.charAt(0) == BOM) {
          line = line.substring(1);
        }
        if (layout.header()) {
          header(line);
          return;
        }
      }
      if (line.isEmpty()) {
        if (blanks++ == 0) {
          firstBlank = lineNo;
        }
        return;
      }
      // A blank line followed by more rows is not the end of the file: it is a broken row.
      for (int i = 0; i < blanks; i++) {
        bad(firstBlank + i, "empty line");
      }
      blanks = 0;
      row(line);
    }

    void header(String line) {
      String[] names = line.split("\t", -1);
      columns = names.length;
      List<String> header = Arrays.asList(names);
      colA = find(header, layout.textA());
      colB = layout.textB() == null ? -1 : find(header, layout.textB());
      colLabel = layout.label() == null ? -1 : find(header, layout.label());
      columnNames = columns + " columns (" + String.join(", ", header) + ")";
    }

    int find(List<String> header, GlueTask.Column c) {
      int i = header.indexOf(c.name());
      if (i < 0) {
        throw new GlueFormatException(
            source,
            lineNo,
            "the "
                + task.dirName()
                + " "
                + split
                + " file must start with a header line holding the column '"
                + c.name()
                + "'; found "
                + abbreviate(header.toString())
                + (header.size() == 1 && header.get(0).isEmpty() ? " (empty line)" : "")
                + ". Is the header missing?");
      }
      return i;
    }

    void row(String line) {
      String[] cols = line.split("\t", -1);
      if (cols.length != columns) {
        bad(
            lineNo,
            "expected "
                + columnNames
                + ", found "
                + cols.length
                + " columns: "
                + abbreviate(line.replace("\t", "\\t")));
        return;
      }
      String textA = cols[colA];
      String textB = colB < 0 ? null : cols[colB];
      int index = examples.size();
      if (colLabel < 0) {
        examples.add(
            task.isRegression()
                ? GlueExample.regression(index, textA, textB, Float.NaN, lineNo)
                : GlueExample.classification(index, textA, textB, -1, lineNo));
        return;
      }
      String value = cols[colLabel];
      String column = layout.label().name();
      if (task.isRegression()) {
        float score = DECIMAL.matcher(value).matches() ? Float.parseFloat(value) : Float.NaN;
        if (!Float.isFinite(score)) {
          bad(lineNo, "column '" + column + "' is not a finite decimal number: '" + value + "'");
          return;
        }
        examples.add(GlueExample.regression(index, textA, textB, score, lineNo));
      } else {
        Integer id = labelIds.get(value);
        if (id == null) {
          bad(
              lineNo,
              "unknown label '"
                  + value
                  + "' in column '"
                  + column
                  + "' (labels: "
                  + String.join(", ", labels)
                  + ")");
          return;
        }
        examples.add(GlueExample.classification(index, textA, textB, id, lineNo));
      }
    }

    void bad(int line, String message) {
      if (!skipBadRows) {
        throw new GlueFormatException(source, line, message);
      }
      skipped++;
      if (skippedSamples.size() < GlueData.MAX_SKIPPED_SAMPLES) {
        skippedSamples.add("line " + line + ": " + message);
      }
    }

    GlueData finish() {
      if (!started) {
        throw new GlueFormatException(
            source,
            1,
            "empty file"
                + (layout.header() ? ", expected the " + task.dirName() + " header line" : ""));
      }
      if (skipped > 0) {
        LOG.warn(
            "{}: skipped {} malformed rows of {} {}, first: {}",
            source,
            skipped,
            task.dirName(),
            split,
            skippedSamples.get(0));
      }
      return new GlueData(task, split, source, labels, examples, skipped, skippedSamples);
    }
  }

  private static String abbreviate(String s) {
    return s.length() <= 120 ? s : s.substring(0, 117) + "...";
  }
}
