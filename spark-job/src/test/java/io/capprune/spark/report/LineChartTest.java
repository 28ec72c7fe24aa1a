package io.capprune.spark.report;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.List;
import java.util.TreeSet;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;

class LineChartTest {

  static final int W = LineChart.DEFAULT_WIDTH;
  static final int H = LineChart.DEFAULT_HEIGHT;
  private static final Color RED = new Color(0xE00000);

  static BufferedImage decode(byte[] png) throws IOException {
    assertTrue(
        png.length > 8
            && (png[0] & 0xff) == 0x89
            && png[1] == 'P'
            && png[2] == 'N'
            && png[3] == 'G',
        "not a PNG signature");
    BufferedImage img = ImageIO.read(new ByteArrayInputStream(png));
    assertEquals(W, img.getWidth());
    assertEquals(H, img.getHeight());
    return img;
  }

  /**
   * Pixels of line colour (clearly saturated, so not the white background, grey grid, frame or
   * black text) inside the central region where the plot area always is, whatever the margins.
   */
  static int colouredPixels(BufferedImage img) {
    int n = 0;
    for (int y = H / 5; y < H * 7 / 8; y++) {
      for (int x = W / 8; x < W * 19 / 20; x++) {
        Color c = new Color(img.getRGB(x, y));
        int max = Math.max(c.getRed(), Math.max(c.getGreen(), c.getBlue()));
        int min = Math.min(c.getRed(), Math.min(c.getGreen(), c.getBlue()));
        n += max - min > 60 ? 1 : 0;
      }
    }
    return n;
  }

  static int nonBackgroundPixels(BufferedImage img) {
    int n = 0;
    for (int y = H / 5; y < H * 7 / 8; y++) {
      for (int x = W / 8; x < W * 19 / 20; x++) {
        n += img.getRGB(x, y) != LineChart.BACKGROUND.getRGB() ? 1 : 0;
      }
    }
    return n;
  }

  private static TreeSet<Integer> columnsWithColour(BufferedImage img, Color target, int fromRow) {
    TreeSet<Integer> cols = new TreeSet<>();
    for (int x = 0; x < W; x++) {
      for (int y = fromRow; y < H; y++) {
        Color c = new Color(img.getRGB(x, y));
        if (Math.abs(c.getRed() - target.getRed())
                + Math.abs(c.getGreen() - target.getGreen())
                + Math.abs(c.getBlue() - target.getBlue())
            < 40) {
          cols.add(x);
          break;
        }
      }
    }
    return cols;
  }

  private static double[] range(int n) {
    double[] x = new double[n];
    for (int i = 0; i < n; i++) {
      x[i] = i;
    }
    return x;
  }

  @Test
  void normalChartIsAPngOfTheRequestedSizeWithLines() throws IOException {
    double[] x = range(200);
    double[] a = new double[200];
    double[] b = new double[200];
    for (int i = 0; i < 200; i++) {
      a[i] = Math.exp(-i / 50.0);
      b[i] = 0.5 + 0.1 * Math.sin(i / 10.0);
    }
    LineChart chart = new LineChart("two series", "step", "value").add("a", x, a).add("b", x, b);
    BufferedImage img = decode(chart.toPng(W, H));
    assertTrue(colouredPixels(img) > 1000, "expected drawn lines, got " + colouredPixels(img));
    BufferedImage log = decode(chart.logY(true).toPng(W, H));
    assertTrue(colouredPixels(log) > 1000);
  }

  @Test
  void emptyChartRendersAxesAndANoteButNoLines() throws IOException {
    BufferedImage img = decode(new LineChart("nothing", "step", "loss").toPng(W, H));
    assertEquals(0, colouredPixels(img));
    assertTrue(nonBackgroundPixels(img) > 200, "grid and note expected");
    // Series that hold no usable point are as good as none.
    LineChart allNaN =
        new LineChart("nan", "step", "loss")
            .logY(true)
            .add("a", new double[] {1, 2}, new double[] {Double.NaN, -1});
    assertEquals(0, colouredPixels(decode(allNaN.toPng(W, H))));
  }

  @Test
  void singlePointIsADot() throws IOException {
    LineChart chart =
        new LineChart("one", "step", "loss")
            .add(
                LineChart.Series.of("a", new double[] {10}, new double[] {0.7}).withColor(RED, 2f));
    BufferedImage img = decode(chart.toPng(W, H));
    int dot = colouredPixels(img);
    assertTrue(dot >= 20 && dot < 200, "a dot of a few pixels expected, got " + dot);
    TreeSet<Integer> cols = columnsWithColour(img, RED, 0);
    // The legend swatch is red too; the dot sits alone in the middle of the plot.
    assertTrue(cols.stream().anyMatch(c -> c > W / 3 && c < 2 * W / 3), "dot not centred: " + cols);
  }

  @Test
  void constantSeriesIsAVisibleLine() throws IOException {
    double[] x = range(100);
    double[] y = new double[100];
    java.util.Arrays.fill(y, 0.9);
    BufferedImage img =
        decode(
            new LineChart("flat", "step", "sparsity")
                .add(LineChart.Series.of("s", x, y).withColor(RED, 2f))
                .toPng(W, H));
    assertTrue(colouredPixels(img) > 500, "got " + colouredPixels(img));
  }

  @Test
  void nanBreaksTheLineIntoRuns() throws IOException {
    double[] x = range(100);
    double[] y = new double[100];
    for (int i = 0; i < 100; i++) {
      y[i] = i >= 40 && i < 60 ? Double.NaN : 1 + i;
    }
    y[80] = Double.POSITIVE_INFINITY;
    // The y range keeps the line in the lower half, below the legend's red swatch.
    BufferedImage img =
        decode(
            new LineChart("gaps", "step", "loss")
                .yRange(0, 250)
                .add(LineChart.Series.of("s", x, y).withColor(RED, 2f))
                .toPng(W, H));
    List<Integer> plotCols = List.copyOf(columnsWithColour(img, RED, H / 2));
    int first = plotCols.get(0);
    int last = plotCols.get(plotCols.size() - 1);
    int widestGap = 0;
    for (int i = 1; i < plotCols.size(); i++) {
      widestGap = Math.max(widestGap, plotCols.get(i) - plotCols.get(i - 1));
    }
    // The line stops at x=39 and goes on at x=60: 21 of the 99 x-units the line spans.
    double expected = (last - first) * 21.0 / 99;
    assertTrue(
        widestGap > 0.8 * expected && widestGap < 1.1 * expected,
        "gap of " + widestGap + " px, expected about " + expected);
  }

  @Test
  void rightAxisSeriesIsDrawn() throws IOException {
    double[] x = range(50);
    double[] pct = new double[50];
    double[] tau = new double[50];
    for (int i = 0; i < 50; i++) {
      pct[i] = 2 * i;
      tau[i] = 1e-3 * i;
    }
    LineChart chart =
        new LineChart("sparsity", "step", "pruned (%)")
            .rightAxisLabel("tau")
            .yRange(0, 100)
            .add("sparsity", x, pct)
            .add(LineChart.Series.of("tau", x, tau).onRightAxis().asDashed());
    assertTrue(colouredPixels(decode(chart.toPng(W, H))) > 500);
  }

  @Test
  void ticksAreRound() {
    LineChart.Scale s = LineChart.Scale.linear(false, false, new double[] {0.013, 0.87});
    assertEquals(List.of("0.0", "0.2", "0.4", "0.6", "0.8", "1.0"), s.labels());
    LineChart.Scale steps = LineChart.Scale.linear(true, false, new double[] {10, 10});
    assertEquals(List.of("9", "10", "11"), steps.labels());
    LineChart.Scale log = LineChart.Scale.log(new double[] {0.011, 1.07});
    assertEquals(List.of("0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2"), log.labels());
    LineChart.Scale decades = LineChart.Scale.log(new double[] {3e-5, 40});
    assertEquals(List.of("1e-4", "0.001", "0.01", "0.1", "1", "10"), decades.labels());
    LineChart.Scale wide =
        LineChart.Scale.log(new double[] {3e-7, 40}); // too many decades to label all
    assertEquals(List.of("1e-6", "1e-4", "0.01", "1"), wide.labels());
    LineChart.Scale tiny = LineChart.Scale.linear(false, false, new double[] {0, 3e-5});
    assertEquals("3e-5", tiny.labels().get(tiny.labels().size() - 1));
  }

  @Test
  void badSeriesAreRejectedWithTheirName() {
    var e =
        assertThrows(
            IllegalArgumentException.class,
            () -> LineChart.Series.of("kd", new double[] {1, 2}, new double[] {1}));
    assertEquals("series 'kd' needs as many x as y values, got 2 and 1", e.getMessage());
  }
}
