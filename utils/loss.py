"""YOLOv5 detection loss (ultralytics v7.0 ComputeLoss): anchor/cell assignment, CIoU box loss, IoU-target objectness, BCE classes.

Vocabulary: nl output levels, na anchors per level, nc classes, nt targets; targets are (nt, 6) rows
[image_index, class, x_center, y_center, width, height], normalised to 0-1.
"""

from functools import partial

from utils.backend import nn, torch
from utils.backend.fused import fused_ciou
from utils.boxes import bbox_iou
from utils.model_tools import de_parallel


def smooth_BCE(eps=0.1):  # noqa: N802 (ultralytics' public name)
    """Positive and negative BCE targets under label smoothing eps (https://arxiv.org/abs/1902.04103)."""
    return 1.0 - 0.5 * eps, 0.5 * eps


smooth_bce = smooth_BCE


class FocalLoss(nn.Module):
    """Wraps a BCEWithLogitsLoss: scales each element by alpha-balance and (1 - p_t)^gamma (RetinaNet)."""

    def __init__(self, loss_fcn, gamma=1.5, alpha=0.25):
        super().__init__()
        self.loss_fcn = loss_fcn
        self.gamma, self.alpha = gamma, alpha
        self.reduction = loss_fcn.reduction
        self.loss_fcn.reduction = "none"  # the focal factor applies per element

    def forward(self, pred, true):
        loss = self.loss_fcn(pred, true)
        p = torch.sigmoid(pred)
        p_t = true * p + (1 - true) * (1 - p)
        alpha = true * self.alpha + (1 - true) * (1 - self.alpha)
        loss = loss * alpha * (1.0 - p_t) ** self.gamma
        return loss.mean() if self.reduction == "mean" else loss.sum() if self.reduction == "sum" else loss


class QFocalLoss(FocalLoss):
    """Quality focal loss: the focal factor is |true - p|^gamma (Generalized Focal Loss)."""

    def forward(self, pred, true):
        loss = self.loss_fcn(pred, true)
        p = torch.sigmoid(pred)
        alpha = true * self.alpha + (1 - true) * (1 - self.alpha)
        loss = loss * alpha * torch.abs(true - p) ** self.gamma
        return loss.mean() if self.reduction == "mean" else loss.sum() if self.reduction == "sum" else loss


class ComputeLoss:
    """Loss of a Detect head's raw maps against targets.

    Args:
        model: the detection model (or a DDP wrapper of it); only its Detect head (nl, na, nc, anchors) is read.
        hyp: hyperparameters: box, obj, cls (gains, already scaled by the trainer), cls_pw, obj_pw, anchor_t,
            fl_gamma, and optionally label_smoothing.
        autobalance: adapt the per-level objectness balance (off in YOLOv5).
    Call:
        loss(p, targets) -> (total * batch_size, detached [lbox, lobj, lcls])
    """

    sort_obj_iou = False  # when a cell is assigned twice, let the highest IoU write last

    def __init__(self, model, hyp, autobalance=False, bbox_iou_optim=False):
        m = de_parallel(model).model[-1]
        self.ciou = fused_ciou if bbox_iou_optim else partial(bbox_iou, CIoU=True)  # --bbox_iou_optim: fused kernels
        self.device = m.anchors.device
        self.hyp = dict(hyp)
        bce_cls = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([float(hyp["cls_pw"])], device=self.device))
        bce_obj = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([float(hyp["obj_pw"])], device=self.device))
        self.cp, self.cn = smooth_BCE(eps=hyp.get("label_smoothing", 0.0))
        g = hyp.get("fl_gamma", 0.0)
        if g > 0:
            bce_cls, bce_obj = FocalLoss(bce_cls, g), FocalLoss(bce_obj, g)
        self.BCEcls, self.BCEobj = bce_cls, bce_obj
        self.balance = {3: [4.0, 1.0, 0.4]}.get(m.nl, [4.0, 1.0, 0.25, 0.06, 0.02])
        strides = [float(s) for s in m.stride]
        self.ssi = strides.index(16) if autobalance else 0
        self.gr = 1.0  # objectness target = gr * IoU + (1 - gr)
        self.autobalance = autobalance
        self.na, self.nc, self.nl = m.na, m.nc, m.nl
        self.anchors = m.anchors  # (nl, na, 2) in grid units

    def __call__(self, p, targets):
        zero = torch.zeros(1, device=self.device)
        lcls, lbox, lobj = zero, zero, zero
        tcls, tbox, indices, anchors = self.build_targets(p, targets)
        for i, pi in enumerate(p):
            b, a, gj, gi = indices[i]
            tobj = torch.zeros(pi.shape[:4], dtype=pi.dtype, device=self.device)
            n = b.shape[0]
            if n:
                ps = pi[b, a, gj, gi]  # (n, no) predictions of the assigned anchors/cells
                pxy = ps[:, 0:2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchors[i]
                iou = self.ciou(torch.cat((pxy, pwh), 1), tbox[i]).view(-1)
                lbox = lbox + (1.0 - iou).mean()
                iou = iou.detach().clamp(0).to(tobj.dtype)
                if self.sort_obj_iou:
                    order = iou.argsort()
                    b, a, gj, gi, iou = b[order], a[order], gj[order], gi[order], iou[order]
                if self.gr < 1:
                    iou = (1.0 - self.gr) + self.gr * iou
                tobj[b, a, gj, gi] = iou
                if self.nc > 1:
                    pcls = ps[:, 5:5 + self.nc]
                    t = torch.full_like(pcls, self.cn)
                    t[torch.arange(n, device=self.device), tcls[i]] = self.cp
                    lcls = lcls + self.BCEcls(pcls, t)
            obji = self.BCEobj(pi[..., 4], tobj)
            lobj = lobj + obji * self.balance[i]
            if self.autobalance:
                self.balance[i] = self.balance[i] * 0.9999 + 0.0001 / obji.detach().item()
        if self.autobalance:
            self.balance = [x / self.balance[self.ssi] for x in self.balance]
        return self._total(lbox, lobj, lcls, p[0].shape[0])

    def _total(self, lbox, lobj, lcls, bs):
        """(weighted sum x batch size, detached [lbox, lobj, lcls]) from the per-level sums."""
        lbox, lobj, lcls = lbox * self.hyp["box"], lobj * self.hyp["obj"], lcls * self.hyp["cls"]
        return (lbox + lobj + lcls) * bs, torch.cat((lbox, lobj, lcls)).detach()

    def _neighbours(self):
        """(reach in cells, offsets of the cell itself and its left, up, right, down neighbours) for the matching."""
        g = 0.5
        return g, torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], device=self.device, dtype=torch.float32) * g

    def build_targets(self, p, targets):
        """Assign each target to anchors (w/h ratio < anchor_t) and to its cell plus the 2 nearest neighbours.

        Returns per level: class ids, box targets (xy offset from the cell in (-0.5, 1.5), wh in grid units),
        (image, anchor, grid y, grid x) indices, and the matched anchors.
        """
        na, nt = self.na, targets.shape[0]
        tcls, tbox, indices, anch = [], [], [], []
        gain = torch.ones(7, device=self.device)
        ai = torch.arange(na, device=self.device, dtype=torch.float32).view(na, 1).repeat(1, nt)
        targets = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)  # (na, nt, 7): + anchor index
        g, off = self._neighbours()
        for i in range(self.nl):
            anchors, shape = self.anchors[i], p[i].shape
            h, w = int(shape[2]), int(shape[3])
            gain[2:6] = torch.tensor([w, h, w, h], device=self.device, dtype=torch.float32)
            t = targets * gain  # to grid units
            if nt:
                r = t[..., 4:6] / anchors[:, None]
                keep = torch.max(r, 1 / r).max(2)[0] < self.hyp["anchor_t"]
                t = t[keep]
                gxy = t[:, 2:4]
                gxi = gain[[2, 3]] - gxy  # distance from the right / bottom edge
                left_up = (gxy % 1 < g) & (gxy > 1)
                right_down = (gxi % 1 < g) & (gxi > 1)
                sel = torch.stack((torch.ones_like(left_up[:, 0]), left_up[:, 0], left_up[:, 1],
                                   right_down[:, 0], right_down[:, 1]))
                t = t.repeat((5, 1, 1))[sel]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[sel]
            else:
                t = targets[0]
                offsets = torch.zeros_like(t[:, 2:4])
            b, c = t[:, 0].long(), t[:, 1].long()
            gxy, gwh, a = t[:, 2:4], t[:, 4:6], t[:, 6].long()
            gij = (gxy - offsets).long()
            gi = gij[:, 0].clamp(0, w - 1)
            gj = gij[:, 1].clamp(0, h - 1)
            indices.append((b, a, gj, gi))
            tbox.append(torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1))
            anch.append(anchors[a])
            tcls.append(c)
        return tcls, tbox, indices, anch

    # ------------------------------------------------------------------------------------------ fixed shapes
    def has_static_form(self):
        """True when ``static`` computes what ``__call__`` does (not for subclasses with their own loss)."""
        return type(self).__call__ is ComputeLoss.__call__ and not self.autobalance

    def static(self, p, targets, valid):
        """The same loss with every shape fixed by the inputs' (what a compiled nn.Graph needs: no boolean-mask
        indexing, no branch on the number of matches).

        ``targets`` is (NT, 6) with rows past the real ones padding, ``valid`` (NT,) marks the real rows. Every
        (neighbour offset, anchor, target) candidate is kept, in the order build_targets produces them, with a mask
        for the ones build_targets selects; masked candidates add nothing to the sums and write their objectness
        target into a spare slot, so duplicates resolve as in __call__ (the last write wins, on OneFlow). Equal to
        __call__ up to float summation order (tests/test_graph.py). Not for autobalance (it reads a value back per
        level).
        """
        assert not self.autobalance, "autobalance reads the loss back per level: eager only"
        na, nt, nc = self.na, targets.shape[0], self.nc
        zero = torch.zeros(1, device=self.device)
        lcls, lbox, lobj = zero, zero, zero
        dummy = torch.tensor([0, 0, 0.5, 0.5, 0.1, 0.1], device=self.device, dtype=targets.dtype)
        targets = torch.where(valid.view(nt, 1) > 0, targets, dummy.view(1, 6))  # padding: a harmless box (no NaN)
        ai = torch.arange(na, device=self.device, dtype=torch.float32).view(na, 1).repeat(1, nt)
        tall = torch.cat((targets.repeat(na, 1, 1), ai[..., None]), 2)  # (na, NT, 7)
        real = valid.view(1, nt).repeat(na, 1) > 0
        g, off = self._neighbours()
        for i, pi in enumerate(p):
            bs, _, h, w = (int(v) for v in pi.shape[:4])
            gain = torch.tensor([1, 1, w, h, w, h, 1], device=self.device, dtype=torch.float32)
            t = tall * gain
            r = t[..., 4:6] / self.anchors[i][:, None]
            keep = (torch.max(r, 1 / r).max(2)[0] < self.hyp["anchor_t"]) & real  # (na, NT)
            gxy = t[..., 2:4]
            gxi = gain[[2, 3]] - gxy
            left_up = (gxy % 1 < g) & (gxy > 1)
            right_down = (gxi % 1 < g) & (gxi > 1)
            sel = torch.stack((keep, left_up[..., 0] & keep, left_up[..., 1] & keep, right_down[..., 0] & keep,
                               right_down[..., 1] & keep)).reshape(-1)  # (5 * na * NT,) candidates
            t = t.repeat(5, 1, 1).reshape(-1, 7)
            offsets = (torch.zeros(5, na * nt, 2, device=self.device) + off[:, None]).reshape(-1, 2)
            mask = sel.to(pi.dtype)
            n = mask.sum()
            b, c, a = t[:, 0].long(), t[:, 1].long(), t[:, 6].long()
            gxy, gwh = t[:, 2:4], t[:, 4:6]
            gij = (gxy - offsets).long()
            gi, gj = gij[:, 0].clamp(0, w - 1), gij[:, 1].clamp(0, h - 1)
            tbox = torch.cat((gxy - torch.stack((gi, gj), 1), gwh), 1)
            ps = pi[b, a, gj, gi]  # (candidates, no)
            pxy = ps[:, 0:2].sigmoid() * 2 - 0.5
            pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * self.anchors[i][a]
            iou = self.ciou(torch.cat((pxy, pwh), 1), tbox).view(-1)
            lbox = lbox + ((1.0 - iou) * mask).sum() / n.clamp(min=1)
            iou = iou.detach().clamp(0).to(pi.dtype)
            if self.gr < 1:
                iou = (1.0 - self.gr) + self.gr * iou
            cells = bs * na * h * w
            slot = ((b * na + a) * h + gj) * w + gi
            slot = torch.where(sel, slot, torch.full_like(slot, cells))  # masked candidates: the spare slot
            tobj = torch.scatter(torch.zeros(cells + 1, dtype=pi.dtype, device=self.device), 0, slot, iou)
            lobj = lobj + self.BCEobj(pi[..., 4], tobj[:cells].view(bs, na, h, w)) * self.balance[i]
            if nc > 1:
                pcls = ps[:, 5:5 + nc]
                hot = c[:, None] == torch.arange(nc, device=self.device)[None]
                tc = torch.where(hot, torch.full_like(pcls, self.cp), torch.full_like(pcls, self.cn))
                lcls = lcls + (self._bce_cls_none(pcls, tc) * mask[:, None]).sum() / (n * nc).clamp(min=1)
        return self._total(lbox, lobj, lcls, p[0].shape[0])

    def _bce_cls_none(self, pred, true):
        """Per-element class loss (BCE or its focal form, whose inner BCE is per-element already)."""
        saved, self.BCEcls.reduction = self.BCEcls.reduction, "none"
        try:
            return self.BCEcls(pred, true)
        finally:
            self.BCEcls.reduction = saved

