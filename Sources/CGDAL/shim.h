// What Swift cannot import from GDAL directly: macros and variadic functions.
// Everything else is used straight from GDAL's own headers.
#ifndef TERRASEG_CGDAL_SHIM_H
#define TERRASEG_CGDAL_SHIM_H

#include <gdal.h>
#include <gdal_alg.h>
#include <gdal_utils.h>
#include <gdalwarper.h>
#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>

/// INIT_RASTERIO_EXTRA_ARG is a macro.
static inline void ts_init_rasterio_extra_arg(GDALRasterIOExtraArg *arg) {
    INIT_RASTERIO_EXTRA_ARG(*arg);
}

/// CPLError is variadic: pass a preformatted message.
static inline void ts_cpl_error(CPLErr cls, CPLErrorNum num, const char *message) {
    CPLError(cls, num, "%s", message);
}

/// CPLFree is a macro for VSIFree.
static inline void ts_cpl_free(void *p) { CPLFree(p); }

#endif
