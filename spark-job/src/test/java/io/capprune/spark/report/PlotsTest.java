package io.capprune.spark.report;

import static io.capprune.spark.report.LineChartTest.colouredPixels;
import static io.capprune.spark.report.LineChartTest.decode;
import static io.capprune.spark.report.LineChartTest.nonBackgroundPixels;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlotsTest {

  @TempDir java.nio.file.Path tmp;
  private FileSystem fs;
  private Path out;

  @BeforeEach
  void localFileSystem() throws IOException {
    fs = FileSystem.getLocal(new Configuration());
    out = new Path(tmp.toUri());
  }

  private List<BufferedImage> writeAndRead(List<StepRecord> records) throws IOException {
    List<Path> written = Plots.writeAll(records, Map.of("accuracy", 0.935), fs, out, null);
    assertEquals(
        List.of(Plots.LOSS, Plots.SPARSITY, Plots.DEV_METRIC),
        written.stream().map(Path::getName).toList());
    List<BufferedImage> images = new ArrayList<>();
    for (String name : List.of(Plots.LOSS, Plots.SPARSITY, Plots.DEV_METRIC)) {
      images.add(decode(Files.readAllBytes(tmp.resolve(name))));
    }
    return images;
  }

  @Test
  void normalRunGivesThreePlotsWithLines() throws IOException {
    List<StepRecord> run = ReportFixtures.run(2000, 10);
    List<BufferedImage> img = writeAndRead(run);
    for (BufferedImage i : img) {
      assertTrue(colouredPixels(i) > 300, "plot without lines: " + colouredPixels(i));
    }
    LineChart loss = Plots.lossChart(run, null);
    assertEquals(
        List.of("total", "ce", "kd", "prc", "snc", "fic"),
        loss.series().stream().map(LineChart.Series::name).toList(),
        "regulariser is off: no legend entry");
    LineChart dev = Plots.devChart(run, Map.of("accuracy", 0.935));
    assertEquals(
        List.of("accuracy", "teacher accuracy"),
        dev.series().stream().map(LineChart.Series::name).toList());
    assertEquals(
        10, dev.series().get(0).x().length, "one point per evaluation (every 200 of 2000 steps)");
    assertEquals(200.0, dev.series().get(0).x()[0], 0);
  }

  @Test
  void plotsAreReplacedNotDuplicated() throws IOException {
    writeAndRead(ReportFixtures.run(200, 10));
    byte[] first = Files.readAllBytes(tmp.resolve(Plots.LOSS));
    writeAndRead(ReportFixtures.run(2000, 10));
    assertFalse(java.util.Arrays.equals(first, Files.readAllBytes(tmp.resolve(Plots.LOSS))));
  }

  @Test
  void emptyRunStillGivesThreeReadablePlots() throws IOException {
    for (BufferedImage i : writeAndRead(List.of())) {
      assertEquals(0, colouredPixels(i));
      assertTrue(nonBackgroundPixels(i) > 200, "axes, grid and note expected");
    }
  }

  @Test
  void singleRecordGivesDots() throws IOException {
    List<StepRecord> one =
        List.of(
            StepRecord.builder(10, 100)
                .loss(0.9)
                .ce(0.6)
                .kd(0.3)
                .sparsity(0.0)
                .threshold(1.0)
                .dev(Map.of("accuracy", 0.91))
                .build());
    List<BufferedImage> img = writeAndRead(one);
    assertTrue(colouredPixels(img.get(0)) > 20, "loss dots");
    assertTrue(colouredPixels(img.get(1)) > 20, "sparsity dot");
    assertTrue(colouredPixels(img.get(2)) > 20, "dev dot");
  }

  @Test
  void nanTermsAndGapsDoNotBreakThePlots() throws IOException {
    List<StepRecord> run = ReportFixtures.run(1000, 10);
    List<StepRecord> gappy = new ArrayList<>();
    for (int i = 0; i < run.size(); i++) {
      StepRecord r = run.get(i);
      boolean gap = i % 20 < 5;
      gappy.add(
          new StepRecord(
              r.step(),
              r.totalSteps(),
              r.epoch(),
              gap ? Double.NaN : r.loss(),
              r.ce(),
              gap ? Double.POSITIVE_INFINITY : r.kd(),
              Double.NaN,
              Double.NaN,
              Double.NaN,
              Double.NaN,
              gap ? Double.NaN : r.sparsity(),
              Double.NaN,
              r.learningRate(),
              r.gradNorm(),
              r.examplesPerSecond(),
              r.secondsElapsed(),
              r.secondsLeft(),
              r.dev()));
    }
    List<BufferedImage> img = writeAndRead(gappy);
    assertTrue(colouredPixels(img.get(0)) > 300);
    assertTrue(colouredPixels(img.get(1)) > 300);
    assertEquals(
        List.of("total", "ce", "kd"),
        Plots.lossChart(gappy, null).series().stream().map(LineChart.Series::name).toList());
    assertEquals(
        List.of("sparsity"),
        Plots.sparsityChart(gappy).series().stream().map(LineChart.Series::name).toList(),
        "no threshold logged: no threshold series");
  }

  @Test
  void lossAxisGoesLogWhenTermsSpanDecades() throws IOException {
    // total about 1, contrastive terms 0.01-0.025: two decades
    List<StepRecord> run = ReportFixtures.run(2000, 10);
    LineChart.Scale auto = Plots.lossChart(run, null).leftScale();
    assertTrue(auto.isLog(), "terms spanning two decades: log axis");
    assertEquals(
        List.of("0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2"),
        auto.labels(),
        "1-2-5 ticks from below the smallest term to above the largest");
    assertFalse(Plots.lossChart(run, false).leftScale().isLog(), "log axis turned off");

    List<StepRecord> close =
        List.of(
            StepRecord.builder(1, 2).loss(1.0).ce(0.6).kd(0.4).build(),
            StepRecord.builder(2, 2).loss(0.8).ce(0.5).kd(0.3).build());
    LineChart.Scale linear = Plots.lossChart(close, null).leftScale();
    assertFalse(linear.isLog(), "terms within half a decade: linear axis");
    // 0.3-1.0 padded to 0.272-1.0 (a fraction-like range stops at 1): steps of 0.1
    assertEquals(
        List.of("0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0"), linear.labels());
    assertTrue(Plots.lossChart(close, true).leftScale().isLog(), "log axis asked for");

    // The threshold is Plots.LOG_SCALE_DECADES = 1.5 decades between the smallest positive term
    // and the largest; zero, negative and non-finite values take no part.
    assertTrue(axisIsLog(1.0, 0.03), "1.52 decades");
    assertFalse(axisIsLog(1.0, 0.033), "1.48 decades");
    assertFalse(
        axisIsLog(1.0, 0.5, 0.0, -2.0, Double.NaN, Double.POSITIVE_INFINITY),
        "only the positive finite terms count");
    assertFalse(Plots.lossChart(List.of(), null).leftScale().isLog(), "no steps: linear");

    // and the log plot is a PNG of the chart's size (decode checks signature, width and height)
    writeAndRead(run);
    assertTrue(colouredPixels(decode(Files.readAllBytes(tmp.resolve(Plots.LOSS)))) > 300);
  }

  /** Whether one step with total {@code total} and these ce, kd, ... terms gets a log axis. */
  private static boolean axisIsLog(double total, double... terms) {
    double[] t = java.util.Arrays.copyOf(terms, 6);
    java.util.Arrays.fill(t, terms.length, t.length, Double.NaN);
    StepRecord r =
        StepRecord.builder(1, 1)
            .loss(total)
            .ce(t[0])
            .kd(t[1])
            .prc(t[2])
            .snc(t[3])
            .fic(t[4])
            .regulariser(t[5])
            .build();
    return Plots.lossChart(List.of(r), null).leftScale().isLog();
  }
}
