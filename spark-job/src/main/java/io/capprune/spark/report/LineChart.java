package io.capprune.spark.report;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.Shape;
import java.awt.geom.AffineTransform;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Line2D;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A small line chart drawn with Java2D: title, legend, axes with tick labels, grid, several named
 * series of (x, y) points, optional log-scale y axis, and an optional second y axis on the right
 * for a series on another scale. No charting library: the job's jar goes to every executor, and the
 * three progress plots need little.
 *
 * <p>Input is untrusted in the sense that training produces it: NaN or infinite points (and
 * non-positive ones on a log axis) break the line into separate runs, an isolated point is drawn as
 * a dot, a constant series gets a padded range, and a chart without any point still renders, with a
 * "no data" note in the plot area.
 */
public final class LineChart {

  static {
    // Must be set before the first AWT toolkit use: the driver runs on machines without a display.
    System.setProperty("java.awt.headless", "true");
  }

  public static final int DEFAULT_WIDTH = 900;
  public static final int DEFAULT_HEIGHT = 500;

  /** Which y axis a series is measured against. */
  public enum Axis {
    LEFT,
    RIGHT
  }

  /**
   * One named line. {@code color} null means the next colour of the palette.
   *
   * @param width stroke width in pixels
   */
  public record Series(
      String name, double[] x, double[] y, Axis axis, Color color, float width, boolean dashed) {

    public Series {
      if (name == null || name.isBlank()) {
        throw new IllegalArgumentException("a series needs a name");
      }
      if (x == null || y == null || x.length != y.length) {
        throw new IllegalArgumentException(
            "series '"
                + name
                + "' needs as many x as y values, got "
                + (x == null ? "null" : x.length)
                + " and "
                + (y == null ? "null" : y.length));
      }
      if (axis == null) {
        axis = Axis.LEFT;
      }
      if (!(width > 0)) {
        throw new IllegalArgumentException(
            "series '" + name + "' stroke width must be > 0, got " + width);
      }
    }

    public static Series of(String name, double[] x, double[] y) {
      return new Series(name, x, y, Axis.LEFT, null, 2f, false);
    }

    public Series onRightAxis() {
      return new Series(name, x, y, Axis.RIGHT, color, width, dashed);
    }

    public Series withColor(Color c, float w) {
      return new Series(name, x, y, axis, c, w, dashed);
    }

    public Series asDashed() {
      return new Series(name, x, y, axis, color, width, true);
    }
  }

  /** Tableau 10: distinguishable, readable on white, and kind to colour-blind readers. */
  static final Color[] PALETTE = {
    new Color(0x4E79A7), new Color(0xF28E2B), new Color(0xE15759), new Color(0x76B7B2),
    new Color(0x59A14F), new Color(0xEDC948), new Color(0xB07AA1), new Color(0xFF9DA7),
    new Color(0x9C755F), new Color(0xBAB0AC)
  };

  static final Color BACKGROUND = Color.WHITE;
  private static final Color FRAME = new Color(0x8C8C8C);
  private static final Color GRID = new Color(0xE8E8E8);
  private static final Color TEXT = new Color(0x262626);
  private static final Color NOTE = new Color(0x8C8C8C);

  /** Series with this many points or fewer get a dot on every point (dev evaluations). */
  private static final int MARKER_LIMIT = 40;

  private final String title;
  private final String xLabel;
  private final String yLabel;
  private String rightLabel = "";
  private boolean logY;
  private boolean integerX;
  private double[] fixedY;
  private String emptyNote = "no data";
  private final List<Series> series = new ArrayList<>();

  public LineChart(String title, String xLabel, String yLabel) {
    this.title = title == null ? "" : title;
    this.xLabel = xLabel == null ? "" : xLabel;
    this.yLabel = yLabel == null ? "" : yLabel;
  }

  /** Log-scale left axis; points {@code <= 0} are left out as gaps. */
  public LineChart logY(boolean on) {
    this.logY = on;
    return this;
  }

  /** The x values are counts (steps): no fractional ticks such as 9.5. */
  public LineChart integerX(boolean on) {
    this.integerX = on;
    return this;
  }

  /**
   * Pins the linear left axis to [lo, hi] instead of fitting it to the data (e.g. 0-100 %), so that
   * successive plots of one run are comparable. Points outside are clipped.
   */
  public LineChart yRange(double lo, double hi) {
    if (!(Double.isFinite(lo) && Double.isFinite(hi) && lo < hi)) {
      throw new IllegalArgumentException(
          "y range must be finite with lo < hi, got [" + lo + ", " + hi + "]");
    }
    this.fixedY = new double[] {lo, hi};
    return this;
  }

  public LineChart rightAxisLabel(String label) {
    this.rightLabel = label == null ? "" : label;
    return this;
  }

  /** What the plot area says when there is no point to draw. */
  public LineChart emptyNote(String note) {
    this.emptyNote = note == null ? "" : note;
    return this;
  }

  public LineChart add(Series s) {
    series.add(s);
    return this;
  }

  public LineChart add(String name, double[] x, double[] y) {
    return add(Series.of(name, x, y));
  }

  public List<Series> series() {
    return List.copyOf(series);
  }

  /** The chart as PNG bytes. */
  public byte[] toPng(int width, int height) {
    BufferedImage img = render(width, height);
    ByteArrayOutputStream out = new ByteArrayOutputStream(64 * 1024);
    try {
      if (!ImageIO.write(img, "png", out)) {
        throw new IllegalStateException("no PNG writer in this JVM");
      }
    } catch (IOException e) {
      throw new UncheckedIOException("encoding chart '" + title + "' as PNG", e);
    }
    return out.toByteArray();
  }

  public BufferedImage render(int width, int height) {
    if (width < 200 || height < 150) {
      throw new IllegalArgumentException(
          "chart must be at least 200x150 pixels, got " + width + "x" + height);
    }
    BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
    Graphics2D g = img.createGraphics();
    try {
      g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
      g.setRenderingHint(
          RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
      g.setRenderingHint(RenderingHints.KEY_STROKE_CONTROL, RenderingHints.VALUE_STROKE_PURE);
      g.setRenderingHint(RenderingHints.KEY_RENDERING, RenderingHints.VALUE_RENDER_QUALITY);
      g.setColor(BACKGROUND);
      g.fillRect(0, 0, width, height);
      draw(g, width, height);
    } finally {
      g.dispose();
    }
    return img;
  }

  // ---------------------------------------------------------------------------------------------

  private void draw(Graphics2D g, int width, int height) {
    Font titleFont = new Font(Font.SANS_SERIF, Font.BOLD, 16);
    Font labelFont = new Font(Font.SANS_SERIF, Font.PLAIN, 13);
    Font tickFont = new Font(Font.SANS_SERIF, Font.PLAIN, 11);
    Font legendFont = new Font(Font.SANS_SERIF, Font.PLAIN, 12);

    Color[] colors = assignColors();
    boolean hasRight = series.stream().anyMatch(s -> s.axis() == Axis.RIGHT);

    Scale xs =
        Scale.linear(
            integerX, false, range(Axis.LEFT, true, false), range(Axis.RIGHT, true, false));
    Scale yl = leftScale();
    Scale yr =
        hasRight ? Scale.linear(false, false, padded(range(Axis.RIGHT, false, false))) : null;

    // Left margin: room for the widest tick label plus the rotated axis label.
    g.setFont(tickFont);
    FontMetrics tfm = g.getFontMetrics();
    int leftTickW = maxWidth(tfm, yl.labels());
    int rightTickW = yr == null ? 0 : maxWidth(tfm, yr.labels());
    int left = 16 + (yLabel.isEmpty() ? 0 : 20) + leftTickW + 8;
    int right = yr == null ? 24 : 16 + (rightLabel.isEmpty() ? 0 : 20) + rightTickW + 8;

    // Title, then the legend in rows under it.
    int y = 14;
    g.setFont(titleFont);
    FontMetrics titleFm = g.getFontMetrics();
    g.setColor(TEXT);
    if (!title.isEmpty()) {
      y += titleFm.getAscent();
      g.drawString(title, (width - titleFm.stringWidth(title)) / 2, y);
      y += titleFm.getDescent() + 8;
    }
    g.setFont(legendFont);
    y = drawLegend(g, colors, hasRight, left, width - right, y);

    int top = y + 6;
    int bottom = height - (xLabel.isEmpty() ? 30 : 50);
    int plotW = width - left - right;
    int plotH = bottom - top;
    if (plotW < 40 || plotH < 40) {
      throw new IllegalArgumentException(
          "chart '"
              + title
              + "' has too many series for "
              + width
              + "x"
              + height
              + " pixels: no room left for the plot");
    }

    // Grid and ticks.
    g.setFont(tickFont);
    g.setStroke(new BasicStroke(1f));
    for (Tick t : yl.ticks()) {
      double py = bottom - yl.fraction(t.value()) * plotH;
      g.setColor(GRID);
      g.draw(new Line2D.Double(left, py, left + plotW, py));
      g.setColor(TEXT);
      g.drawString(
          t.label(),
          left - 6 - tfm.stringWidth(t.label()),
          (float) (py + tfm.getAscent() / 2.0 - 1));
    }
    for (Tick t : xs.ticks()) {
      double px = left + xs.fraction(t.value()) * plotW;
      g.setColor(GRID);
      g.draw(new Line2D.Double(px, top, px, bottom));
      g.setColor(FRAME);
      g.draw(new Line2D.Double(px, bottom, px, bottom + 4));
      g.setColor(TEXT);
      g.drawString(
          t.label(), (float) (px - tfm.stringWidth(t.label()) / 2.0), bottom + 6 + tfm.getAscent());
    }
    if (yr != null) {
      for (Tick t : yr.ticks()) {
        double py = bottom - yr.fraction(t.value()) * plotH;
        g.setColor(FRAME);
        g.draw(new Line2D.Double(left + plotW, py, left + plotW + 4, py));
        g.setColor(TEXT);
        g.drawString(t.label(), left + plotW + 7, (float) (py + tfm.getAscent() / 2.0 - 1));
      }
    }
    g.setColor(FRAME);
    g.drawRect(left, top, plotW, plotH);

    // Axis labels.
    g.setFont(labelFont);
    FontMetrics lfm = g.getFontMetrics();
    g.setColor(TEXT);
    if (!xLabel.isEmpty()) {
      g.drawString(xLabel, left + (plotW - lfm.stringWidth(xLabel)) / 2, height - 14);
    }
    if (!yLabel.isEmpty()) {
      drawRotated(
          g,
          yLabel + (logY ? " (log scale)" : ""),
          14 + lfm.getAscent(),
          top + plotH / 2,
          -Math.PI / 2);
    }
    if (yr != null && !rightLabel.isEmpty()) {
      drawRotated(g, rightLabel, width - 14 - lfm.getDescent(), top + plotH / 2, Math.PI / 2);
    }

    // The lines go over the frame, clipped a few pixels outside it: a value sitting exactly on an
    // axis limit (sparsity 0, theta 1) stays visible instead of hiding under the frame line.
    Shape oldClip = g.getClip();
    g.clipRect(left - 4, top - 4, plotW + 9, plotH + 9);
    boolean any = false;
    for (int i = 0; i < series.size(); i++) {
      Series s = series.get(i);
      Scale ys = s.axis() == Axis.RIGHT ? yr : yl;
      any |= drawSeries(g, s, colors[i], xs, ys, left, bottom, plotW, plotH);
    }
    g.setClip(oldClip);
    if (!any && !emptyNote.isEmpty()) {
      g.setFont(labelFont);
      g.setColor(NOTE);
      g.drawString(emptyNote, left + (plotW - lfm.stringWidth(emptyNote)) / 2, top + plotH / 2);
    }
  }

  private Color[] assignColors() {
    Color[] colors = new Color[series.size()];
    int next = 0;
    for (int i = 0; i < colors.length; i++) {
      Color c = series.get(i).color();
      colors[i] = c != null ? c : PALETTE[next++ % PALETTE.length];
    }
    return colors;
  }

  private int drawLegend(Graphics2D g, Color[] colors, boolean hasRight, int x0, int x1, int y) {
    if (series.isEmpty()) {
      return y;
    }
    FontMetrics fm = g.getFontMetrics();
    int rowH = fm.getHeight() + 4;
    int swatch = 22;
    int gap = 18;
    int x = x0;
    y += 2;
    int baseline = y + fm.getAscent();
    for (int i = 0; i < series.size(); i++) {
      Series s = series.get(i);
      String label = s.name() + (hasRight && s.axis() == Axis.RIGHT ? " (right axis)" : "");
      int w = swatch + 6 + fm.stringWidth(label);
      if (x > x0 && x + w > x1) {
        x = x0;
        baseline += rowH;
      }
      double mid = baseline - fm.getAscent() / 2.0 + 1;
      g.setColor(colors[i]);
      g.setStroke(stroke(s));
      g.draw(new Line2D.Double(x, mid, x + swatch, mid));
      g.setColor(TEXT);
      g.drawString(label, x + swatch + 6, baseline);
      x += w + gap;
    }
    return baseline + fm.getDescent() + 4;
  }

  private static BasicStroke stroke(Series s) {
    return s.dashed()
        ? new BasicStroke(
            s.width(), BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 10f, new float[] {7f, 5f}, 0f)
        : new BasicStroke(s.width(), BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND);
  }

  /** Draws one series; returns whether any point was drawn. */
  private boolean drawSeries(
      Graphics2D g,
      Series s,
      Color color,
      Scale xs,
      Scale ys,
      int left,
      int bottom,
      int plotW,
      int plotH) {
    int n = s.x().length;
    boolean[] ok = new boolean[n];
    int count = 0;
    for (int i = 0; i < n; i++) {
      ok[i] = Double.isFinite(s.x()[i]) && ys.accepts(s.y()[i]);
      count += ok[i] ? 1 : 0;
    }
    if (count == 0) {
      return false;
    }
    Path2D.Double path = new Path2D.Double();
    List<double[]> dots = new ArrayList<>();
    boolean markAll = count <= MARKER_LIMIT && !s.dashed();
    boolean penDown = false;
    for (int i = 0; i < n; i++) {
      if (!ok[i]) {
        penDown = false;
        continue;
      }
      double px = left + xs.fraction(s.x()[i]) * plotW;
      double py = bottom - ys.fraction(s.y()[i]) * plotH;
      boolean isolated = (i == 0 || !ok[i - 1]) && (i == n - 1 || !ok[i + 1]);
      if (markAll || isolated) {
        dots.add(new double[] {px, py});
      }
      if (penDown) {
        path.lineTo(px, py);
      } else {
        path.moveTo(px, py);
        penDown = true;
      }
    }
    g.setColor(color);
    g.setStroke(stroke(s));
    g.draw(path);
    double r = Math.max(3, s.width() + 1.5);
    for (double[] d : dots) {
      g.fill(new Ellipse2D.Double(d[0] - r, d[1] - r, 2 * r, 2 * r));
    }
    return true;
  }

  /** The left y axis as drawn: log or linear, its range and its ticks. */
  Scale leftScale() {
    return logY
        ? Scale.log(range(Axis.LEFT, false, true))
        : fixedY != null
            ? Scale.linear(false, true, fixedY)
            : Scale.linear(false, false, padded(range(Axis.LEFT, false, false)));
  }

  /** Finite min and max over the series of one axis, of x ({@code ofX}) or y; null if none. */
  private double[] range(Axis axis, boolean ofX, boolean positiveOnly) {
    double lo = Double.POSITIVE_INFINITY;
    double hi = Double.NEGATIVE_INFINITY;
    for (Series s : series) {
      if (s.axis() != axis) {
        continue;
      }
      for (int i = 0; i < s.x().length; i++) {
        double x = s.x()[i];
        double y = s.y()[i];
        boolean usable =
            Double.isFinite(x)
                && Double.isFinite(y)
                && (!positiveOnly || y > 0)
                && (!ofX || !(logY && axis == Axis.LEFT) || y > 0);
        if (usable) {
          double v = ofX ? x : y;
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    return lo <= hi ? new double[] {lo, hi} : null;
  }

  /**
   * Widens a y range by 4% each side so that extreme points do not sit on the frame, but not past 0
   * or 1 when the data stays inside them: such values are usually fractions (accuracy, theta), and
   * an axis running to -0.2 or 1.2 would suggest values that cannot occur.
   */
  static double[] padded(double[] r) {
    if (r == null || r[0] == r[1]) {
      return r;
    }
    double pad = 0.04 * (r[1] - r[0]);
    double lo = r[0] - pad;
    double hi = r[1] + pad;
    if (r[0] >= 0 && lo < 0) {
      lo = 0;
    }
    if (r[1] <= 1 && hi > 1 && r[0] >= 0) {
      hi = 1;
    }
    return new double[] {lo, hi};
  }

  private static int maxWidth(FontMetrics fm, List<String> labels) {
    int w = 0;
    for (String l : labels) {
      w = Math.max(w, fm.stringWidth(l));
    }
    return w;
  }

  private static void drawRotated(Graphics2D g, String text, double x, double y, double angle) {
    AffineTransform old = g.getTransform();
    g.translate(x, y);
    g.rotate(angle);
    g.drawString(text, -g.getFontMetrics().stringWidth(text) / 2f, 0);
    g.setTransform(old);
  }

  // ---------------------------------------------------------------------------------------------

  record Tick(double value, String label) {}

  /** Maps data values to [0, 1] along an axis and chooses its ticks. */
  static final class Scale {
    private final boolean log;
    private final double lo; // in axis units (log10 of the value on a log axis)
    private final double hi;
    private final List<Tick> ticks;

    private Scale(boolean log, double lo, double hi, List<Tick> ticks) {
      this.log = log;
      this.lo = lo;
      this.hi = hi;
      this.ticks = ticks;
    }

    /**
     * A linear axis spanning the union of the given ranges (nulls ignored), widened to round ticks
     * unless {@code exact}; {@code integer} keeps the tick step a whole number.
     */
    static Scale linear(boolean integer, boolean exact, double[]... ranges) {
      double min = Double.POSITIVE_INFINITY;
      double max = Double.NEGATIVE_INFINITY;
      for (double[] r : ranges) {
        if (r != null) {
          min = Math.min(min, r[0]);
          max = Math.max(max, r[1]);
        }
      }
      if (!(min <= max)) {
        min = 0;
        max = 1;
      }
      if (min == max) {
        // A constant series: centre it in a band of +-10% (or +-1 around 0) so it is a visible
        // line.
        double pad = min == 0 ? 1 : Math.abs(min) * 0.1;
        min -= pad;
        max += pad;
      }
      double step = niceStep((max - min) / 5);
      if (integer) {
        step = Math.max(1, step);
      }
      double a = exact ? min : Math.floor(min / step + 1e-9) * step;
      double b = exact ? max : Math.ceil(max / step - 1e-9) * step;
      int decimals = Math.max(0, (int) -Math.floor(Math.log10(step) + 1e-9));
      boolean sci = step < 1e-4 || Math.max(Math.abs(a), Math.abs(b)) >= 1e7;
      List<Tick> ticks = new ArrayList<>();
      for (long k = (long) Math.ceil(a / step - 1e-9);
          k <= (long) Math.floor(b / step + 1e-9);
          k++) {
        double v = k * step;
        if (Math.abs(v) < step * 1e-9) {
          v = 0;
        }
        ticks.add(
            new Tick(v, sci ? sciLabel(v) : String.format(Locale.ROOT, "%." + decimals + "f", v)));
      }
      return new Scale(false, a, b, List.copyOf(ticks));
    }

    /**
     * A log-10 axis from the largest 1, 2 or 5 times a power of ten below the range to the smallest
     * one above it: whole decades would waste up to 90% of a decade on each side.
     */
    static Scale log(double[] range) {
      double min = range == null ? 0.1 : range[0];
      double max = range == null ? 1 : range[1];
      double a = Math.log10(roundDown125(min));
      double b = Math.log10(roundUp125(max));
      if (b - a < Math.log10(2) - 1e-9) {
        b = a + Math.log10(2); // a constant series still gets a visible band
      }
      double decades = b - a;
      int[] mantissas = decades <= 3 ? new int[] {1, 2, 5} : new int[] {1};
      int every = (int) Math.ceil(decades / 8.0);
      List<Tick> ticks = new ArrayList<>();
      for (int e = (int) Math.floor(a) - 1; e <= (int) Math.ceil(b); e++) {
        if (mantissas.length == 1 && Math.floorMod(e, every) != 0) {
          continue;
        }
        for (int m : mantissas) {
          double u = Math.log10(m) + e;
          if (u >= a - 1e-9 && u <= b + 1e-9) {
            ticks.add(new Tick(m * Math.pow(10, e), mantissaLabel(m, e)));
          }
        }
      }
      return new Scale(true, a, b, List.copyOf(ticks));
    }

    private static double roundDown125(double v) {
      double p = Math.pow(10, Math.floor(Math.log10(v) + 1e-12));
      double f = v / p;
      return (f >= 5 - 1e-9 ? 5 : f >= 2 - 1e-9 ? 2 : 1) * p;
    }

    private static double roundUp125(double v) {
      double p = Math.pow(10, Math.floor(Math.log10(v) - 1e-12));
      double f = v / p;
      return (f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10) * p;
    }

    boolean isLog() {
      return log;
    }

    boolean accepts(double y) {
      return Double.isFinite(y) && (!log || y > 0);
    }

    double fraction(double v) {
      double u = log ? Math.log10(v) : v;
      return (u - lo) / (hi - lo);
    }

    List<Tick> ticks() {
      return ticks;
    }

    List<String> labels() {
      return ticks.stream().map(Tick::label).toList();
    }

    private static double niceStep(double raw) {
      double exp = Math.floor(Math.log10(raw));
      double f = raw / Math.pow(10, exp);
      double nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
      return nice * Math.pow(10, exp);
    }

    private static String mantissaLabel(int m, int e) {
      if (e >= 0 && e <= 5) {
        return String.format(Locale.ROOT, "%d", m * (long) Math.pow(10, e));
      }
      if (e < 0 && e >= -3) {
        return String.format(Locale.ROOT, "%." + (-e) + "f", m * Math.pow(10, e));
      }
      return m + "e" + e;
    }

    private static String sciLabel(double v) {
      if (v == 0) {
        return "0";
      }
      String s = String.format(Locale.ROOT, "%.1e", v);
      // 2.0e-05 -> 2e-5: shorter labels leave more room for the plot.
      String mant = s.substring(0, s.indexOf('e')).replace(".0", "");
      int exp = Integer.parseInt(s.substring(s.indexOf('e') + 1));
      return mant + "e" + exp;
    }
  }
}
