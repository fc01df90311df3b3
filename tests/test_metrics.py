import numpy as np
import pytest

from foundseg.eval import ConfusionMatrix, binary_iou, centred_disc, miou, roc_auc


def test_hand_computed_confusion_matrix():
    gt = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    # class 0: tp 1, gt 2, pred 2 -> 1/3; class 1: tp 2, gt 3, pred 3 -> 2/4; class 2: tp 1, gt 2, pred 2 -> 1/3
    r = cm.compute()
    assert r["IoU"] == pytest.approx([1 / 3, 1 / 2, 1 / 3])
    assert r["mIoU"] == pytest.approx((1 / 3 + 1 / 2 + 1 / 3) / 3)
    assert r["pAcc"] == pytest.approx(4 / 7)
    assert r["mAcc"] == pytest.approx((1 / 2 + 2 / 3 + 1 / 2) / 3)
    assert r["fwIoU"] == pytest.approx(2 / 7 * 1 / 3 + 3 / 7 * 1 / 2 + 2 / 7 * 1 / 3)


def test_class_without_ground_truth_is_left_out_of_the_mean():
    cm = ConfusionMatrix(3)
    cm.update(np.array([0, 0, 2]), np.array([0, 0, 0]))  # class 2 predicted but never in ground truth
    r = cm.compute()
    assert np.isnan(r["IoU"][1]) and np.isnan(r["IoU"][2])
    assert r["mIoU"] == pytest.approx(2 / 3)


def test_all_ignore_images_change_nothing():
    cm = ConfusionMatrix(2)
    cm.update(np.array([1, 1]), np.array([255, 255]))
    assert cm.matrix.sum() == 0 and np.isnan(cm.compute()["mIoU"])


def test_dataset_level_not_mean_of_images():
    preds = [np.array([1, 1, 1, 1]), np.array([0])]
    gts = [np.array([1, 1, 1, 0]), np.array([0])]
    # one matrix: class 0 tp 1 gt 2 pred 1 -> 1/2 ; class 1 tp 3 gt 3 pred 4 -> 3/4
    assert miou(preds, gts, 2) == pytest.approx((1 / 2 + 3 / 4) / 2)


def test_merge_equals_single_pass():
    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 4, 50), rng.integers(0, 4, 50)) for _ in range(6)]
    whole, a, b = ConfusionMatrix(4), ConfusionMatrix(4), ConfusionMatrix(4)
    for i, (p, t) in enumerate(pairs):
        whole.update(p, t)
        (a if i % 2 else b).update(p, t)
    assert np.array_equal(a.merge(b).matrix, whole.matrix)
    with pytest.raises(ValueError, match="merge"):
        a.merge(ConfusionMatrix(3))


@pytest.mark.parametrize("pred, gt, match", [
    (np.array([0, 5]), np.array([0, 1]), "pred holds labels outside"),
    (np.array([0, 1]), np.array([0, 7]), "target holds labels outside"),
    (np.array([0, 1, 1]), np.array([0, 1]), "shape"),
])
def test_bad_labels_raise(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        ConfusionMatrix(3).update(pred, gt)


def test_binary_iou_auc_and_disc():
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[1:3] = True
    assert binary_iou(a, b) == pytest.approx(4 / 12)
    assert binary_iou(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([1, 1, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both"):
        roc_auc([1, 2], [1, 1])
    disc = centred_disc((20, 20), 0.25)
    assert disc[10, 10] and not disc[0, 0] and abs(disc.sum() - np.pi * 25) < 8


def test_agrees_with_torchmetrics_where_semantics_coincide():
    import torch
    from torchmetrics.classification import MulticlassJaccardIndex

    rng = np.random.default_rng(1)
    ours = ConfusionMatrix(5)
    theirs = MulticlassJaccardIndex(num_classes=5, average="macro", ignore_index=255)
    for _ in range(4):
        gt = rng.integers(0, 5, (16, 16))
        gt[rng.random((16, 16)) < 0.1] = 255
        pred = np.where(rng.random((16, 16)) < 0.6, np.where(gt == 255, 0, gt), rng.integers(0, 5, (16, 16)))
        ours.update(pred, gt)
        theirs.update(torch.from_numpy(pred), torch.from_numpy(gt))
    assert ours.compute()["mIoU"] == pytest.approx(float(theirs.compute()), abs=1e-6)


def test_differs_from_torchmetrics_on_classes_without_ground_truth():
    import torch
    from torchmetrics.classification import MulticlassJaccardIndex

    pred, gt = np.array([0, 0, 2]), np.array([0, 0, 0])
    cm = ConfusionMatrix(3)
    cm.update(pred, gt)
    tm = MulticlassJaccardIndex(num_classes=3, average="macro")(torch.from_numpy(pred), torch.from_numpy(gt))
    assert cm.compute()["mIoU"] == pytest.approx(2 / 3)  # only class 0 has ground truth
    assert float(tm) == pytest.approx(1 / 3)  # class 2, predicted but never in the truth, counts as 0
