"""Callbacks: named hooks fired by the trainer and validator, with the names ultralytics YOLOv5 uses."""

HOOKS = (
    "on_pretrain_routine_start", "on_pretrain_routine_end",
    "on_train_start", "on_train_epoch_start", "on_train_batch_start", "optimizer_step", "on_before_zero_grad",
    "on_train_batch_end", "on_train_epoch_end",
    "on_val_start", "on_val_batch_start", "on_val_image_end", "on_val_batch_end", "on_val_end",
    "on_fit_epoch_end", "on_model_save", "on_train_end", "on_params_update", "teardown",
)


class Callbacks:
    """Register functions under a hook name and run them in order; unknown hook names are an error."""

    def __init__(self):
        self._callbacks = {k: [] for k in HOOKS}
        self.stop_training = False  # a callback may set this to end training after the current batch

    def register_action(self, hook, name="", callback=None):
        if hook not in self._callbacks:
            raise KeyError(f"hook '{hook}' not found in callbacks {list(self._callbacks)}")
        if not callable(callback):
            raise TypeError(f"callback '{callback}' is not callable")
        self._callbacks[hook].append({"name": name, "callback": callback})

    def remove_actions(self, name):
        """Unregister every action registered under ``name`` (loggers detaching after their run)."""
        for hook, actions in self._callbacks.items():
            self._callbacks[hook] = [a for a in actions if a["name"] != name]

    def get_registered_actions(self, hook=None):
        return self._callbacks[hook] if hook else self._callbacks

    def run(self, hook, *args, **kwargs):
        if hook not in self._callbacks:
            raise KeyError(f"hook '{hook}' not found in callbacks {list(self._callbacks)}")
        for logger in self._callbacks[hook]:
            logger["callback"](*args, **kwargs)
