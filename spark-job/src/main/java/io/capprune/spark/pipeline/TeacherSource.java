package io.capprune.spark.pipeline;

import io.capprune.core.checkpoint.BertConfig;
import io.capprune.core.checkpoint.CheckpointStore;
import io.capprune.core.checkpoint.HfCheckpoint;
import io.capprune.core.glue.GlueTask;
import io.capprune.spark.config.JobConfig;
import io.capprune.spark.io.RunDirectory;
import io.capprune.spark.io.Storage;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.hadoop.fs.Path;

/**
 * Where the teacher comes from: the checkpoint cap.teacher names (read and checked before Spark
 * started), or the {@code teacher/} the finetune stage writes into the output directory.
 *
 * @param checked the checkpoint cap.teacher names, as validation read it; null when the finetune
 *     stage trains the teacher
 * @param student the student's configuration, which a teacher must match
 */
public record TeacherSource(
    JobConfig config,
    Storage storage,
    RunDirectory out,
    HfCheckpoint checked,
    BertConfig student,
    GlueTask task) {

  /** Whether cap.teacher names the teacher (then the finetune stage has nothing to do). */
  public boolean given() {
    return !config.teacher().isBlank();
  }

  /** cap.teacher, or the output directory's {@code teacher/}. */
  public String location() {
    return given() ? config.teacher() : out.resolve(OutputLayout.TEACHER_DIR).toString();
  }

  /** Whether the finetune stage has written {@code teacher/} (its config.json is written last). */
  public boolean finetuned() {
    return !given()
        && storage.exists(new Path(out.resolve(OutputLayout.TEACHER_DIR), CheckpointStore.CONFIG));
  }

  /** Whether there is a teacher to read: given, or finetuned into this directory. */
  public boolean available() {
    return checked != null || given() || finetuned();
  }

  /** The teacher's checkpoint, checked against the task. */
  public HfCheckpoint read() {
    if (checked != null) {
      return checked;
    }
    HfCheckpoint teacher;
    try {
      teacher = CheckpointStore.read(location(), storage.conf());
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cap.teacher: cannot read "
              + location()
              + (given() ? "" : " (run the finetune stage first)")
              + ": "
              + e.getMessage(),
          e);
    }
    check(teacher, location(), student, task);
    return teacher;
  }

  /** A teacher must classify into the task's labels and have the student's width (FiC). */
  public static void check(
      HfCheckpoint teacher, String location, BertConfig student, GlueTask task) {
    BertConfig tc = teacher.config();
    if (!teacher.hasClassifier()
        || tc.numLabels() != student.numLabels()
        || (!tc.labels().isEmpty()
            && !student.labels().isEmpty()
            && !tc.labels().equals(student.labels()))) {
      throw new IllegalArgumentException(
          "cap.teacher: "
              + location
              + " has "
              + (teacher.hasClassifier()
                  ? tc.numLabels() + " labels " + tc.labels()
                  : "no classifier")
              + " but task "
              + task.dirName()
              + " needs "
              + student.numLabels()
              + " "
              + student.labels());
    }
    if (tc.hiddenSize() != student.hiddenSize()) {
      throw new IllegalArgumentException(
          "cap.teacher: "
              + location
              + " has hidden size "
              + tc.hiddenSize()
              + ", the student "
              + student.hiddenSize()
              + " (FiC compares their vectors)");
    }
  }
}
