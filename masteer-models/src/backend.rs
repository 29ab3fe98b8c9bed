//! Backends: the CPU backend (burn's `flex`, default), `wgpu` and `cuda` behind cargo
//! features, and the default device of each.

#[cfg(feature = "cpu")]
/// The CPU backend: burn's flex (pure Rust, SIMD, rayon threads).
pub type Cpu = burn_flex::Flex;

#[cfg(feature = "wgpu")]
/// The wgpu backend (Vulkan, Metal, DX12, or a software rasteriser).
pub type Wgpu = burn::backend::Wgpu;

#[cfg(feature = "cuda")]
/// The CUDA backend.
pub type Cuda = burn::backend::Cuda;

#[cfg(feature = "cpu")]
/// The backend used when none is named: CPU when the `cpu` feature is on.
pub type DefaultBackend = Cpu;

#[cfg(all(not(feature = "cpu"), feature = "cuda"))]
/// The backend used when none is named.
pub type DefaultBackend = Cuda;

#[cfg(all(not(feature = "cpu"), not(feature = "cuda"), feature = "wgpu"))]
/// The backend used when none is named.
pub type DefaultBackend = Wgpu;

#[cfg(any(feature = "cpu", feature = "cuda", feature = "wgpu"))]
/// The default device of the default backend.
pub fn default_device() -> <DefaultBackend as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}

/// Whether a CUDA driver library can be found on this machine. The CUDA backend panics
/// when it cannot load `libcuda`, so probe with this before creating a CUDA device.
pub fn cuda_driver_present() -> bool {
    const DIRS: [&str; 5] = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/local/cuda/lib64",
        "/usr/local/nvidia/lib64",
        "/usr/lib/wsl/lib",
    ];
    DIRS.iter().any(|d| {
        std::path::Path::new(d).join("libcuda.so.1").exists()
            || std::path::Path::new(d).join("libcuda.so").exists()
    })
}

#[cfg(feature = "wgpu")]
/// The graphics API burn's wgpu backend asks for (Vulkan, or Metal on macOS); only an
/// adapter of this API can run the model, whatever else wgpu finds.
fn wgpu_graphics_api() -> wgpu::Backend {
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    AutoGraphicsApi::backend()
}

#[cfg(feature = "wgpu")]
/// The adapters of burn's graphics API that wgpu finds, one line each (name, API,
/// device type), software drivers such as Mesa's lavapipe included.
pub fn wgpu_adapters() -> Vec<String> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu_graphics_api().into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.enumerate_adapters(wgpu_graphics_api().into()))
        .iter()
        .map(|a| {
            let info = a.get_info();
            format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
        })
        .collect()
}

#[cfg(feature = "wgpu")]
/// Whether burn's wgpu backend will find an adapter: the same request its runtime makes
/// for the default device (its graphics API, high performance, no forced fallback).
/// burn panics when that request fails, so probe with this before creating a device.
pub fn wgpu_adapter_present() -> bool {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu_graphics_api().into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
    }))
    .is_ok()
}
