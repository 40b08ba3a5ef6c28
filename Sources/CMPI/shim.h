// What Swift cannot import from Open MPI's C API directly: its predefined handles
// (MPI_COMM_WORLD, datatypes, operations, error handlers) are macros that cast the address of
// a global symbol, and MPI_IN_PLACE / MPI_STATUS_IGNORE are pointer casts.
#ifndef TERRASEG_CMPI_SHIM_H
#define TERRASEG_CMPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm ts_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype ts_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype ts_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype ts_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype ts_mpi_int32(void) { return MPI_INT32_T; }
static inline MPI_Datatype ts_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op ts_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op ts_mpi_max(void) { return MPI_MAX; }
static inline MPI_Errhandler ts_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *ts_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Status *ts_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int ts_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int ts_mpi_any_tag(void) { return MPI_ANY_TAG; }
static inline int ts_mpi_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static inline int ts_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline MPI_Request ts_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *ts_mpi_statuses_ignore(void) { return MPI_STATUSES_IGNORE; }

#endif
