"""YOLOv5 segmentation loss (ultralytics v7.0): the detection loss plus a per-instance mask loss on the prototypes.

Box, objectness and class terms are utils.loss.ComputeLoss's, computed by it on the same maps and the same target
assignment. The mask term, for every assigned (target, anchor, cell): the predicted mask logits (coefficients @
prototypes of its image) against the target's ground-truth mask at prototype resolution, binary cross-entropy per
pixel, kept only inside the target's box, averaged over the prototype image, divided by the box's normalised area;
averaged per image and summed over images and levels, then scaled by hyp['box'] / batch size.

Items come out in ultralytics' order (box, seg, obj, cls), which names the loss columns (ITEM_NAMES).
"""

from utils.backend import F, to_numpy, torch
from utils.boxes import xywh2xyxy
from utils.loss import ComputeLoss as DetectionLoss
from utils.segment.masks import crop_mask

ITEM_NAMES = ("box_loss", "seg_loss", "obj_loss", "cls_loss")


class ComputeLoss(DetectionLoss):
    """Loss of a Segment head's outputs against targets and ground-truth masks.

    Args:
        model: the segmentation model (or a DDP wrapper); its Segment head (nl, na, nc, nm, anchors) is read.
        hyp: hyperparameters, as for utils.loss.ComputeLoss (box, obj, cls gains already scaled by the trainer).
        overlap: masks are per-image index images (training default) instead of one mask per target (--no-overlap).
        autobalance: adapt the per-level objectness balance (off in YOLOv5).
    Call:
        loss((p, protos), targets, masks) -> (total * batch_size, detached [lbox, lseg, lobj, lcls]), where p is the
        list of level maps (bs, na, ny, nx, 5 + nc + nm), protos (bs, nm, mh, mw), targets (nt, 6) [image, class, x,
        y, w, h] normalised and sorted by image (as the collate makes them), masks float (bs, H, W) index images with
        overlap, else (nt, H, W) in target order; (H, W) is resized (nearest) to (mh, mw) when it differs.
    """

    def __init__(self, model, hyp, *, overlap, autobalance=False, bbox_iou_optim=False):
        super().__init__(model, hyp, autobalance=autobalance, bbox_iou_optim=bbox_iou_optim)
        self.overlap = overlap
        self.nm = getattr(model, "module", model).model[-1].nm  # the Segment head (model or its DDP wrapper)
        self._mask_targets = None  # set by build_targets, read by mask_loss

    def __call__(self, preds, targets, masks):
        p, protos = preds
        bs = protos.shape[0]
        total, items = super().__call__(p, targets)  # box, obj, cls; fills self._mask_targets via build_targets
        lseg = self.mask_loss(p, protos, masks) * (self.hyp["box"] / bs)
        lbox, lobj, lcls = items[0:1], items[1:2], items[2:3]
        return total + lseg * bs, torch.cat((lbox, lseg.detach(), lobj, lcls))

    # ------------------------------------------------------------------------------------------------- targets
    def build_targets(self, p, targets):
        """The detection assignment (utils.loss.ComputeLoss.build_targets) that also remembers, for each assigned row,
        which target it came from: returns (tcls, tbox, indices, anchors) and keeps (target indices, normalised xywh)
        per level for the mask loss.

        The target index travels through the class column, which the detection assignment copies but never reads.
        """
        nt = targets.shape[0]
        tagged = targets.clone()
        tagged[:, 1] = torch.arange(nt, device=targets.device, dtype=targets.dtype)
        tidx, tbox, indices, anch = super().build_targets(p, tagged)
        classes = targets[:, 1].long()
        tcls, extra = [], []
        for i, t in enumerate(tidx):
            h, w = int(p[i].shape[2]), int(p[i].shape[3])
            gain = torch.tensor([w, h, w, h], device=targets.device, dtype=targets.dtype)
            xywhn = targets[t, 2:6] * gain / gain  # the grid round trip of ultralytics, for bit-equal mask crops
            tcls.append(classes[t])
            extra.append((t, xywhn))
        self._mask_targets = indices, extra, self._mask_ids(targets, bs=p[0].shape[0])
        return tcls, tbox, indices, anch

    def _mask_ids(self, targets, bs):
        """Per target, its mask id: 1-based position among its image's targets (overlap), else its own index.

        With overlap the ids count targets image by image in image order, as ultralytics does (so targets must be
        grouped by image in that order, which the collate guarantees).
        """
        nt = targets.shape[0]
        if not self.overlap:
            return torch.arange(nt, device=targets.device)
        counts = [int(n) for n in to_numpy((targets[:, 0].long()[None] == torch.arange(bs, device=targets.device)
                                            [:, None]).sum(1))]
        ids = [torch.arange(1, n + 1, device=targets.device) for n in counts]
        return torch.cat(ids) if ids else torch.zeros(0, dtype=torch.int64, device=targets.device)

    # ---------------------------------------------------------------------------------------------------- masks
    def mask_loss(self, p, protos, masks):
        """Sum over levels and images of the per-image mean mask loss (before the box / bs gain)."""
        indices, extra, mask_ids = self._mask_targets
        _, _, mh, mw = protos.shape
        if tuple(masks.shape[-2:]) != (mh, mw):
            masks = F.interpolate(masks[None].float(), (mh, mw), mode="nearest")[0]
        masks = masks.float()
        lseg = torch.zeros(1, device=self.device)
        size = torch.tensor([mw, mh, mw, mh], device=self.device, dtype=protos.dtype)
        for i, (b, a, gj, gi) in enumerate(indices):
            if not b.shape[0]:
                continue
            t, xywhn = extra[i]
            coefficients = p[i][b, a, gj, gi][:, 5 + self.nc:]
            mxyxy = xywh2xyxy(xywhn * size)
            area = xywhn[:, 2:].prod(1)
            for bi in sorted(set(to_numpy(b).tolist())):
                j = b == bi
                gt = self._gt_masks(masks, bi, mask_ids[t[j]])
                lseg = lseg + self.single_mask_loss(gt, coefficients[j], protos[bi], mxyxy[j], area[j])
        return lseg

    def _gt_masks(self, masks, bi, ids):
        """Ground-truth masks of targets with mask ids ``ids`` in image ``bi`` (n, mh, mw) float 0/1."""
        if self.overlap:
            return (masks[bi][None] == ids.reshape(-1, 1, 1).to(masks.dtype)).float()
        return masks[ids]

    def single_mask_loss(self, gt_mask, coefficients, proto, xyxy, area):
        """Mean over one image's targets of (box-cropped mean BCE of mask logits vs gt) / normalised box area."""
        logits = (coefficients @ proto.reshape(self.nm, -1)).reshape(-1, *proto.shape[1:])
        loss = F.binary_cross_entropy_with_logits(logits, gt_mask, reduction="none")
        return (crop_mask(loss, xyxy).mean(dim=(1, 2)) / area).mean()


SegmentationLoss = ComputeLoss
