"""The README block of bench/run.py: the per-model table, then the whole-app measures against
the targets of the performance issue."""
from __future__ import annotations

FAST_TARGET = {"resnet50": 1.5, "densenet121": 1.5, "efficientnet_lite0": 1.5}  # eager/fast >=
CAM_TARGET, PREDICT_ALL_TARGET, COLD_START_TARGET = 2.0, 1.3, 3.0


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def markdown(res: dict) -> str:
    """The README block: per-model table, then the whole-app measures against their targets."""
    env, pa, mem, cold = res["environment"], res["predict_all"], res["memory"], res["cold_start"]
    lines = [f"Measured by `python bench/run.py` on {env['date']}: {env['cpu']}, {env['cores']} "
             f"cores, {env['threads']} thread(s) for both PyTorch and ONNX Runtime, load average "
             f"{env['load_average']:.1f} at the start (above the thread count means another job "
             f"shared the CPU; compare ratios, not absolute times). Large matrix product: "
             f"{env['matmul_gflops']:.0f} GFLOP/s; FLOP floor = FLOPs / that rate. Batch 1 on a "
             f"real photo; each time is the best of {env['rounds']} rounds in which eager, fast "
             f"path and Grad-CAM take turns (medians are in `bench/results.json`). Grad-CAM: "
             "`fvcore.explain.cam.compute_cam` (one forward, gradients only after the target "
             "layer); "
             f"grad-cam as-is: the package's GradCAM with every weight gradient.", "",
             "| model | source | GFLOP | eager ms | fast ms | eager/fast | floor ms | fast/floor "
             "| Grad-CAM ms | CAM/eager | grad-cam as-is ms |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["models"]:
        target = FAST_TARGET.get(r["arch"])
        speed = f"{r['speedup']:.2f}x" + (f" ({_yes(r['speedup'] >= target)})" if target else "")
        stock = f"{r['stock_cam_ms']:.0f}" if r["stock_cam_ms"] else "-"
        lines.append(f"| {r['model']} | {r['source']} | {r['gflop']:.2f} | {r['eager_ms']:.1f} | "
                     f"{r['fast_ms']:.1f} | {speed} | {r['floor_ms']:.1f} | "
                     f"{r['fast_over_floor']:.2f} | {r['cam_ms']:.1f} | "
                     f"{r['cam_over_eager']:.2f}x ({_yes(r['cam_over_eager'] <= CAM_TARGET)}) | "
                     f"{stock} |")
    limit = 1.5 * mem["weights_f32_mb"] + 600
    if "first_render_s" in cold:
        cold_cell = (f"{cold['first_render_s']:.2f} s with {len(res['models'])} checkpoints "
                     f"(health endpoint {cold['health_s']:.2f} s"
                     f"{'; page raised ' + cold['exceptions'][0] if cold['exceptions'] else ''})")
        cold_ok = _yes(cold["first_render_s"] < COLD_START_TARGET and not cold["exceptions"])
    else:
        cold_cell, cold_ok = cold["note"], "-"
    lines += ["", "| measure | value | target | met |", "|---|---|---|---|",
              f"| predict-all, 1 image, all models | {pa['fast_1_ms']:.0f} ms (eager "
              f"{pa['eager_1_ms']:.0f} ms) | <= {PREDICT_ALL_TARGET} x sum of floors "
              f"({pa['floor_1_ms']:.0f} ms): {pa['fast_1_over_floor']:.2f}x | "
              f"{_yes(pa['fast_1_over_floor'] <= PREDICT_ALL_TARGET)} |",
              f"| predict-all, batch of 16 | {pa['fast_16_ms']:.0f} ms "
              f"({pa['fast_16_ms'] / 16:.0f} ms/image) | {pa['fast_16_over_floor']:.2f}x the "
              f"floor | - |",
              f"| cold start to first home-page render | {cold_cell} | < {COLD_START_TARGET:.0f} s "
              f"| {cold_ok} |",
              "| resident memory, all models loaded + 1 prediction | "
              f"{mem['rss_1_image_mb']:.0f} MB "
              f"(before loading: {mem['rss_start_mb']:.0f} MB; after a batch of 16: "
              f"{mem['rss_16_images_mb']:.0f} MB; after one Grad-CAM per model, which builds the "
              f"torch modules too: {mem['rss_after_cams_mb']:.0f} MB) | <= 1.5 x "
              f"{mem['weights_f32_mb']:.0f} MB float32 weights + 600 MB = {limit:.0f} MB | "
              f"{_yes(mem['rss_1_image_mb'] <= limit)} |",
              f"| load all models, first time in this run (ONNX export + parity check where no "
              f"export was cached) | "
              f"{sum(r['first_load_s'] for r in res['models']):.1f} s | - | - |",
              f"| load all models again (cached ONNX) | {sum(mem['load_s'].values()):.1f} s | - "
              f"| - |"]
    return "\n".join(lines)
